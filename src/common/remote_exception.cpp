#include "mproc/remote_exception.hpp"

#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <system_error>
#include <typeinfo>
#include <utility>

#include "common/demangle.hpp"

namespace mproc {
namespace detail {
namespace {

// The table of types rethrown as themselves: built in (standard and mproc
// types) or registered. Only names map to code this process chose.
class ThrowerTable {
 public:
  static ThrowerTable& get() {
    static ThrowerTable* table = new ThrowerTable();  // never destroyed: used at exit too
    return *table;
  }

  void add(std::string type, ExceptionThrower thrower) {
    std::lock_guard<std::mutex> lock(mutex_);
    throwers_[std::move(type)] = thrower;
  }

  ExceptionThrower find(const std::string& type) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = throwers_.find(type);
    return found == throwers_.end() ? nullptr : found->second;
  }

 private:
  ThrowerTable();

  template <class E>
  void add_built_in() {
    throwers_[exception_type_name(typeid(E))] = [](const RemoteException& error) { throw E(error.message); };
  }

  std::mutex mutex_;
  std::map<std::string, ExceptionThrower> throwers_;
};

// std::system_error's what() is "prefix: message of the code": the prefix
// is what its constructor takes back.
std::string system_error_prefix(const RemoteException& error, const std::error_code& code) {
  std::string suffix = ": " + code.message();
  const std::string& what = error.message;
  if (what.size() >= suffix.size() && what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return what.substr(0, what.size() - suffix.size());
  }
  return what;
}

// The error code a system_error carried, in a category this process knows
// by name (the standard ones); other categories come back as the generic.
std::error_code error_code_of(const RemoteException& error) {
  if (error.error_category == std::system_category().name()) {
    return {error.error_code, std::system_category()};
  }
  return {error.error_code, std::generic_category()};
}

ThrowerTable::ThrowerTable() {
  add_built_in<std::logic_error>();
  add_built_in<std::invalid_argument>();
  add_built_in<std::domain_error>();
  add_built_in<std::length_error>();
  add_built_in<std::out_of_range>();
  add_built_in<std::runtime_error>();
  add_built_in<std::range_error>();
  add_built_in<std::overflow_error>();
  add_built_in<std::underflow_error>();
  add_built_in<Error>();
  add_built_in<DecodeError>();
  add_built_in<EncodeError>();
  add_built_in<NotTransferableError>();
  add_built_in<UsageError>();
  add_built_in<ProcessError>();
  add_built_in<OwnerDiedError>();
  add_built_in<BrokenBarrierError>();
  add_built_in<Empty>();
  add_built_in<Full>();
  add_built_in<TimeoutError>();
  add_built_in<BrokenProcessPool>();
  add_built_in<WorkerLostError>();
  add_built_in<CancelledError>();
  add_built_in<EOFError>();
  throwers_[exception_type_name(typeid(BufferTooShort))] = [](const RemoteException& error) {
    throw BufferTooShort(error.message, {});  // the message's bytes stay where they were
  };
  throwers_[exception_type_name(typeid(std::bad_alloc))] = [](const RemoteException&) { throw std::bad_alloc(); };
  throwers_[exception_type_name(typeid(std::exception))] = [](const RemoteException&) { throw std::exception(); };
  throwers_[exception_type_name(typeid(std::system_error))] = [](const RemoteException& error) {
    std::error_code code = error_code_of(error);
    throw std::system_error(code, system_error_prefix(error, code));
  };
  throwers_[exception_type_name(typeid(FileExistsError))] = [](const RemoteException& error) {
    throw FileExistsError(system_error_prefix(error, std::make_error_code(std::errc::file_exists)));
  };
  throwers_[exception_type_name(typeid(FileNotFoundError))] = [](const RemoteException& error) {
    throw FileNotFoundError(system_error_prefix(error, std::make_error_code(std::errc::no_such_file_or_directory)));
  };
}

}  // namespace

std::string exception_type_name(const std::type_info& type) { return demangle(type.name()); }

void register_exception_thrower(std::string type, ExceptionThrower thrower) {
  ThrowerTable::get().add(std::move(type), thrower);
}

}  // namespace detail

RemoteException capture_exception(std::exception_ptr error, std::string process) {
  RemoteException captured;
  captured.process = std::move(process);
  try {
    std::rethrow_exception(error);
  } catch (const RemoteError& e) {
    // Passed on again: it keeps where it came from.
    captured.type = e.type();
    captured.message = e.message();
    captured.process = e.process();
  } catch (const std::system_error& e) {
    captured.type = detail::exception_type_name(typeid(e));
    captured.message = e.what();
    captured.error_code = e.code().value();
    captured.error_category = e.code().category().name();
  } catch (const std::exception& e) {
    captured.type = detail::exception_type_name(typeid(e));
    captured.message = e.what();
  } catch (...) {
    captured.type = "an exception not derived from std::exception";
    captured.message = "(no message)";
  }
  return captured;
}

void rethrow_remote(const RemoteException& error) {
  if (detail::ExceptionThrower thrower = detail::ThrowerTable::get().find(error.type)) thrower(error);
  throw RemoteError(error.type, error.message, error.process);
}

}  // namespace mproc
