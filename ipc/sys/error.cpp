// sys/error.cpp — turning a failed system call's errno into the ipc::Error that names it.
#include "ipc/error.hpp"

#include <cerrno>

namespace ipc {

namespace {
std::string os_message(std::string_view operation, std::string_view object, std::string_view problem, int errno_value) {
    std::string message{operation};
    if (!object.empty()) {
        message += " '";
        message += object;
        message += '\'';
    }
    message += ": ";
    if (!problem.empty()) {
        message += problem;
        message += " (";
        message += std::generic_category().message(errno_value);
        message += ')';
    } else {
        message += std::generic_category().message(errno_value);
    }
    return message;
}
}  // namespace

OSError::OSError(std::string_view operation, std::string_view object, int errno_value)
    : OSError(operation, object, {}, errno_value) {}

OSError::OSError(std::string_view operation, std::string_view object, std::string_view problem, int errno_value)
    : Error(os_message(operation, object, problem, errno_value), std::error_code(errno_value, std::generic_category())) {}

void throw_os_error(std::string_view operation, std::string_view object) {
    throw_os_error(operation, object, errno);
}

void throw_os_error(std::string_view operation, std::string_view object, int errno_value) {
    if (errno_value == EEXIST) throw FileExistsError(operation, object, errno_value);
    if (errno_value == ENOENT) throw FileNotFoundError(operation, object, errno_value);
    if (errno_value == EACCES || errno_value == EPERM) throw PermissionError(operation, object, errno_value);
    if (errno_value == ECONNREFUSED) throw ConnectionRefusedError(operation, object, errno_value);
    throw OSError(operation, object, errno_value);
}

}  // namespace ipc
