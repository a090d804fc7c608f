// sync/objects.hpp — what the sources of the synchronization primitives share: naming an object in
// an error, and holding an internal lock word for a scope.
#pragma once

#include <string>

#include "ipc/detail/lock_word.hpp"
#include "ipc/detail/shared_object.hpp"
#include "ipc/detail/thread_id.hpp"

namespace ipc::detail {

/// "Lock 'name'": the object as errors name it.
inline std::string describe(Kind kind, const SharedObject& object) {
    return std::string(kind_name(kind)) + " '" + object.name() + "'";
}

/// Holds a mutex-like LockWord for a scope; a holder that died inside is reported to `on_dead`.
class InternalLock {
public:
    template <class OnDead>
    InternalLock(LockWord& word, OnDead on_dead) : word_(word) {
        if (acquire_lock(word_, this_thread_id(), true, Deadline::never()) == Acquired::owner_died) on_dead();
    }
    ~InternalLock() { release_lock(word_); }
    InternalLock(const InternalLock&) = delete;
    InternalLock& operator=(const InternalLock&) = delete;

private:
    LockWord& word_;
};

}  // namespace ipc::detail
