// ipc/error.hpp — the one exception hierarchy of ipc.
// Every failure is an ipc::Error whose message names the operation, the object and the OS error.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace ipc {

/// Base of every exception ipc throws. `code()` holds the OS error when a system call failed.
class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message, std::error_code code = {})
        : std::runtime_error(message), code_(code) {}
    [[nodiscard]] std::error_code code() const noexcept { return code_; }

private:
    std::error_code code_;
};

/// A system call failed; the message ends with the OS error text.
class OSError : public Error {
public:
    OSError(std::string_view operation, std::string_view object, int errno_value);
    /// With what went wrong in ipc's words before the OS error text ("handle is closed").
    OSError(std::string_view operation, std::string_view object, std::string_view problem, int errno_value);
};

/// Creating a named object whose name is taken (EEXIST).
class FileExistsError : public OSError {
public:
    using OSError::OSError;
};

/// Opening or unlinking a name that does not exist (ENOENT).
class FileNotFoundError : public OSError {
public:
    using OSError::OSError;
};

/// Opening an object this user may not use (EACCES, EPERM), or one that someone else made or
/// opened up to others (a squatter on the name).
class PermissionError : public OSError {
public:
    using OSError::OSError;
};

/// Sending to a connection whose every reader is gone (EPIPE).
class BrokenPipeError : public OSError {
public:
    using OSError::OSError;
};

/// Connecting to an address where nothing listens any more (ECONNREFUSED).
class ConnectionRefusedError : public OSError {
public:
    using OSError::OSError;
};

/// Misuse of a Process (start twice, join before start, close while running) or a failed start.
class ProcessError : public Error {
public:
    using Error::Error;
};

/// A Pool worker died (killed by a signal, or exited) while it ran a task: that task's result.
/// exitcode() is as Process::exitcode(): -N for signal N.
class WorkerDiedError : public ProcessError {
public:
    WorkerDiedError(const std::string& message, int exitcode) : ProcessError(message), exitcode_(exitcode) {}
    [[nodiscard]] int exitcode() const noexcept { return exitcode_; }

private:
    int exitcode_;
};

/// An exception thrown in another process (a Pool worker) whose type ipc cannot recreate here.
/// type_name() names the original type; what() is "<type>: <its message>".
class RemoteError : public Error {
public:
    RemoteError(std::string type_name, const std::string& message)
        : Error(type_name + ": " + message), type_name_(std::move(type_name)) {}
    [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

private:
    std::string type_name_;
};

/// A blocking call gave up after its timeout.
class TimeoutError : public Error {
    using Error::Error;
};

/// A value could not be encoded or decoded, or a message holds another type than requested.
class CodecError : public Error {
    using Error::Error;
};

/// Shared memory that breaks ipc's own rules: a segment header, a ring position or a record that
/// another process wrote over (no Python equivalent: Python's objects live in one process). The
/// object stays unusable; every user of it gets this error instead of a crash or a wrong value.
class CorruptSegmentError : public Error {
    using Error::Error;
};

/// An argument is out of range or otherwise invalid (Python's ValueError).
class ValueError : public Error {
    using Error::Error;
};

/// release() of an RLock by a thread that does not hold it (Python raises AssertionError or
/// RuntimeError there, not ValueError).
class NotOwnedError : public Error {
    using Error::Error;
};

/// An index outside a shared Array or a managed list (Python's IndexError).
class IndexError : public Error {
    using Error::Error;
};

/// A key a managed dict does not hold (Python's KeyError).
class KeyError : public Error {
    using Error::Error;
};

/// A name a managed Namespace does not hold (Python's AttributeError).
class AttributeError : public Error {
    using Error::Error;
};

/// A manager's heap has no room left for a value (Python's MemoryError).
class MemoryError : public Error {
    using Error::Error;
};

/// A proxy's manager is gone: shut down, or its process died (where Python's proxies raise
/// EOFError or BrokenPipeError from the socket).
class ManagerError : public Error {
    using Error::Error;
};

/// A Barrier was broken (a party timed out, aborted or reset it) while or before this party waited.
class BrokenBarrierError : public Error {
    using Error::Error;
};

/// recv() on an empty connection whose every writer is gone, also by dying (Python's EOFError).
class EOFError : public Error {
    using Error::Error;
};

/// recv_bytes_into() with a buffer too small, or recv_bytes() over maxlength. The message stays in
/// the connection; size() says how large it is.
class BufferTooShort : public Error {
public:
    BufferTooShort(const std::string& message, std::size_t size) : Error(message), size_(size) {}
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    std::size_t size_;
};

/// A Listener/Client handshake failed: the peer does not know the authkey, has none while this side
/// has one (or the reverse), or does not speak the handshake (Python's AuthenticationError).
class AuthenticationError : public Error {
    using Error::Error;
};

/// put() on a full Queue without blocking or after its timeout (Python's queue.Full).
class Full : public Error {
    using Error::Error;
};

/// get() on an empty Queue without blocking or after its timeout (Python's queue.Empty).
class Empty : public Error {
    using Error::Error;
};

/// put() on a Queue after shutdown(), or get() once a shut-down Queue is empty (Python 3.13's
/// queue.ShutDown).
class ShutDown : public Error {
    using Error::Error;
};

/// Throws OSError (FileExistsError, FileNotFoundError, PermissionError, ConnectionRefusedError for
/// EEXIST, ENOENT, EACCES or EPERM, ECONNREFUSED) for `operation` on `object` with the current `errno`.
[[noreturn]] void throw_os_error(std::string_view operation, std::string_view object);
/// Throws OSError for `operation` on `object` with an explicit error number.
[[noreturn]] void throw_os_error(std::string_view operation, std::string_view object, int errno_value);

}  // namespace ipc
