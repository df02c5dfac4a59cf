// The program's main(), wrapped: the mproc target passes the link option
// --wrap=main on to the programs that link it (static library only), so the
// C library calls __wrap_main, which takes a spawn or forkserver child over
// (and never returns then) before the program's own main(), __real_main,
// would run. At this point every static initializer has run, those of the
// libraries linked after mproc included: a target sees every global object
// constructed, as it would in the parent.
//
// In its own file because linking it is what tells spawn.cpp that main() is
// wrapped, and because it names __real_main, which only a wrapped link has.

#include "runtime/start.hpp"

extern "C" int __real_main(int argc, char** argv, char** environment);  // NOLINT: the linker's name

extern "C" int __wrap_main(int argc, char** argv, char** environment) {  // NOLINT: the linker's name
  mproc::detail::prepare_program(argc, argv);
  return __real_main(argc, argv, environment);
}
