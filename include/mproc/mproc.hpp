// mproc/mproc.hpp
//
// The umbrella header: everything mproc offers.

#pragma once

#include "mproc/array.hpp"
#include "mproc/async_result.hpp"
#include "mproc/barrier.hpp"
#include "mproc/codec.hpp"
#include "mproc/condition.hpp"
#include "mproc/connection.hpp"
#include "mproc/context.hpp"
#include "mproc/errors.hpp"
#include "mproc/event.hpp"
#include "mproc/finalize.hpp"
#include "mproc/function.hpp"
#include "mproc/futures.hpp"
#include "mproc/imap.hpp"
#include "mproc/lock.hpp"
#include "mproc/pool.hpp"
#include "mproc/process.hpp"
#include "mproc/queue.hpp"
#include "mproc/remote_exception.hpp"
#include "mproc/semaphore.hpp"
#include "mproc/shareable_list.hpp"
#include "mproc/shared_memory.hpp"
#include "mproc/start_method.hpp"
#include "mproc/thread_pool.hpp"
#include "mproc/timeout.hpp"
#include "mproc/unique_fd.hpp"
#include "mproc/value.hpp"
