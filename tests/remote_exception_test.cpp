// Exceptions across processes: caught in a child, sent over a Pipe as data,
// thrown again in the parent as their own type when it is known, as
// RemoteError otherwise.

#include "mproc/remote_exception.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "mproc/codec.hpp"
#include "mproc/connection.hpp"
#include "support/child.hpp"

namespace {

using mproc::RemoteError;
using mproc::RemoteException;
using mproc::testing::ChildProcess;

// A user's exception type, registered in this process before any fork.
class InventoryError : public std::runtime_error {
 public:
  explicit InventoryError(const std::string& what) : std::runtime_error(what) {}
};
const bool inventory_error_registered = mproc::register_exception<InventoryError>();

// A type nobody registers.
class UnknownError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs `fail` in a child, which captures what it throws and sends it back;
// returns what arrived.
RemoteException caught_in_a_child(std::function<void()> fail) {
  auto [parent_end, child_end] = mproc::Pipe();
  auto child = ChildProcess::fork([&, child_end = child_end]() mutable {
    try {
      fail();
    } catch (...) {
      child_end.send(mproc::capture_exception(std::current_exception(), "Worker-7"));
      return 0;
    }
    return 1;
  });
  auto received = parent_end.recv<RemoteException>();
  EXPECT_EQ(child.wait(), 0);
  return received;
}

// Rethrows `error` and checks that it comes out as an E saying `what`.
template <class E>
void expect_rethrown_as(const RemoteException& error, const std::string& what) {
  try {
    mproc::rethrow_remote(error);
  } catch (const E& e) {
    EXPECT_EQ(typeid(e), typeid(E)) << "came back as a subtype of " << error.type;
    EXPECT_EQ(std::string(e.what()), what);
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << error.type << " came back as " << typeid(e).name() << ": " << e.what();
    return;
  }
}

TEST(RethrowRemote, StandardExceptionTypesComeBackAsThemselves) {
  expect_rethrown_as<std::invalid_argument>(caught_in_a_child([] { throw std::invalid_argument("bad x"); }), "bad x");
  expect_rethrown_as<std::out_of_range>(caught_in_a_child([] { throw std::out_of_range("index 9"); }), "index 9");
  expect_rethrown_as<std::length_error>(caught_in_a_child([] { throw std::length_error("long"); }), "long");
  expect_rethrown_as<std::domain_error>(caught_in_a_child([] { throw std::domain_error("dom"); }), "dom");
  expect_rethrown_as<std::logic_error>(caught_in_a_child([] { throw std::logic_error("logic"); }), "logic");
  expect_rethrown_as<std::runtime_error>(caught_in_a_child([] { throw std::runtime_error("run"); }), "run");
  expect_rethrown_as<std::range_error>(caught_in_a_child([] { throw std::range_error("range"); }), "range");
  expect_rethrown_as<std::overflow_error>(caught_in_a_child([] { throw std::overflow_error("over"); }), "over");
  expect_rethrown_as<std::underflow_error>(caught_in_a_child([] { throw std::underflow_error("under"); }), "under");
  EXPECT_THROW(mproc::rethrow_remote(caught_in_a_child([] { throw std::bad_alloc(); })), std::bad_alloc);
}

TEST(RethrowRemote, SystemErrorKeepsItsCodeAndText) {
  auto error = caught_in_a_child([] { throw std::system_error(ENOENT, std::system_category(), "opening x"); });
  try {
    mproc::rethrow_remote(error);
    ADD_FAILURE() << "nothing thrown";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(ENOENT, std::system_category()));
    EXPECT_EQ(std::string(e.what()), std::system_error(ENOENT, std::system_category(), "opening x").what());
  }
}

TEST(RethrowRemote, MprocErrorsComeBackAsThemselves) {
  expect_rethrown_as<mproc::TimeoutError>(caught_in_a_child([] { throw mproc::TimeoutError("late"); }), "late");
  expect_rethrown_as<mproc::UsageError>(caught_in_a_child([] { throw mproc::UsageError("misuse"); }), "misuse");
  expect_rethrown_as<mproc::DecodeError>(caught_in_a_child([] { throw mproc::DecodeError("garbled"); }), "garbled");
  expect_rethrown_as<mproc::WorkerLostError>(caught_in_a_child([] { throw mproc::WorkerLostError("pid 5 killed"); }),
                                             "pid 5 killed");
  auto missing = caught_in_a_child([] { throw mproc::FileNotFoundError("segment /x"); });
  EXPECT_THROW(mproc::rethrow_remote(missing), mproc::FileNotFoundError);
}

TEST(RethrowRemote, RegisteredUserTypeComesBackAsItself) {
  ASSERT_TRUE(inventory_error_registered);
  expect_rethrown_as<InventoryError>(caught_in_a_child([] { throw InventoryError("no apples"); }), "no apples");
}

TEST(RethrowRemote, UnknownTypeIsARemoteErrorNamingTypeTextAndProcess) {
  auto error = caught_in_a_child([] { throw UnknownError("odd"); });
  try {
    mproc::rethrow_remote(error);
    ADD_FAILURE() << "nothing thrown";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.type(), "(anonymous namespace)::UnknownError");
    EXPECT_EQ(e.message(), "odd");
    EXPECT_EQ(e.process(), "Worker-7");
    EXPECT_EQ(std::string(e.what()), "(anonymous namespace)::UnknownError: odd (in Worker-7)");
  }
}

TEST(RethrowRemote, ExceptionNotFromStdExceptionIsARemoteError) {
  auto error = caught_in_a_child([] { throw 42; });
  EXPECT_THROW(mproc::rethrow_remote(error), RemoteError);
}

TEST(CaptureException, RemoteErrorPassedOnKeepsWhereItCameFrom) {
  RemoteError original("app::Odd", "odd", "Worker-1");
  auto passed = mproc::capture_exception(std::make_exception_ptr(original), "Worker-2");
  EXPECT_EQ(passed.type, "app::Odd");
  EXPECT_EQ(passed.process, "Worker-1");
  EXPECT_EQ(mproc::decode<RemoteException>(mproc::encode(passed).bytes()), passed);
}

}  // namespace
