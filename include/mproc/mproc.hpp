// mproc/mproc.hpp
//
// The umbrella header: everything mproc offers.

#pragma once

#include "mproc/codec.hpp"
#include "mproc/errors.hpp"
#include "mproc/function.hpp"
#include "mproc/unique_fd.hpp"
