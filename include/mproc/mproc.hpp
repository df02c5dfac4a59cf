// mproc/mproc.hpp
//
// The umbrella header: everything mproc offers.

#pragma once

#include "mproc/codec.hpp"
#include "mproc/connection.hpp"
#include "mproc/errors.hpp"
#include "mproc/finalize.hpp"
#include "mproc/function.hpp"
#include "mproc/process.hpp"
#include "mproc/timeout.hpp"
#include "mproc/unique_fd.hpp"
