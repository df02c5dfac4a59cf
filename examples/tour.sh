#!/usr/bin/env bash
# The tour of mproc's examples, run by `make demo`: each program in order,
# with what it shows. Usage: examples/tour.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
run() {
  local name=$1 what=$2
  printf '\n\033[1m== %s: %s\033[0m\n' "$name" "$what"
  "$build/examples/$name"
}
run codec_tour "values cross as bytes, structs need no code, bad input is an error"
run function_tour "functions cross by reference: plain, lambda, partial"
run seed001_print_numbers "seed 001: a child prints 1 to 5, the parent joins it"
run seed001_global_counter "seed 001: a child's globals are its own"
run seed001_queue_worker "seed 001: a message through a Queue"
run seed001_pipe_worker "seed 001: a message through a Pipe"
run seed001_lock_printer "seed 001: a Lock around print"
run seed001_event "seed 001: one process waits for an Event another sets (3 s)"
run seed001_condition "seed 001: a consumer waits on a Condition until the producer notifies (2 s)"
run seed001_semaphore "seed 001: a Semaphore(2) lets two of four processes in at a time (5 s)"
run seed001_barrier "seed 001: three processes meet at a Barrier (2 s)"
run seed001_value_array "seed 001: four processes add 1 to a shared Value and Array"
run seed002_calculate_e "seed 002: a Process subclass computes e until an Event stops it, and returns it through a SimpleQueue (3 s)"
run seed004_get_id "seed 004: process ids of parent and child"
run seed003_lifecycle "seed 003: is_alive, sentinel, exitcode -15 after terminate(), close()"
run seed003_queues "seed 003: a Queue filled by two processes, a taxi and a user over a Pipe with a Queue each, a JoinableQueue's join() (5 s)"
run seed003_refused_message "seed 003: a message of the wrong type is refused, never run"
run seed003_shared_ctypes "seed 003: counters with and without the lock, a c_char Array, RawArray cells"
run seed003_synchronization "seed 003: BoundedSemaphore, RLock + Conditions across nested processes, wait_for, Events with timeouts (23 s)"
run seed004_pool "seed 004: a Pool's worker prints its ids, returns them with get(), and map(f, [1, 2, 3])"
run seed001_pool_map "seed 001: a Pool of 5 maps a 2 s call over 10 URLs in about 4 s"
run seed003_pool_heavy "seed 003: apply_async, and get(timeout) raising TimeoutError for a call that takes minutes (3 s)"
run seed001_start_method "seed 001: set_start_method('spawn'), then a Process runs worker in a fresh run of this program"
run start_methods "a child under each start method, fork, spawn and forkserver: its name, exit code, and start + join time"
run seed001_endless_task "seed 001: terminate() a child that runs forever (5 s)"
run seed001_daemon "seed 001: a daemonic child stops when the program exits (5 s)"
