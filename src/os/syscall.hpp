// The seam between the os layer and the kernel. Every system call in src/os
// goes through MPROC_SYSCALL(name), which is `::name` in the library and a fake
// in tests/os_mock_test.cpp, where the same sources are compiled with
// MPROC_OS_MOCK defined to inject EINTR, short transfers and failures.

#pragma once

#ifdef MPROC_OS_MOCK
#include "os_mock.hpp"  // provided by the test
#define MPROC_SYSCALL(name) ::mproc::os::mock::name
#else
#define MPROC_SYSCALL(name) ::name
#endif
