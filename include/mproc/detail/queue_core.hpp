// mproc/detail/queue_core.hpp
//
// The untyped queue under Queue<T>, SimpleQueue<T> and JoinableQueue<T>: it
// moves encoded messages through shared memory. Internal; the layout and
// the protocol are described in src/queue/queue_core.cpp.

#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "mproc/codec.hpp"

namespace mproc::detail {

// Which of the three queues a core serves, recorded in it so that a decoded
// handle of another kind is refused.
enum class QueueKind : std::uint32_t { queue = 1, simple, joinable };

using QueueTimeout = std::optional<std::chrono::nanoseconds>;

// Receives an item's message and out-of-band buffers, valid during the call.
// A small item's message comes without its fingerprint (the queue's type
// was checked when the handle was made): `fingerprinted` is false.
using ItemSink = void (*)(void* context, std::span<const std::byte> message,
                          std::span<const ByteView> buffers, bool fingerprinted);

class QueueCore;

// The encoder put() fills: large contiguous ranges go out of band, so that
// they are copied once, straight into the queue.
Encoder& queue_encoder();

// Gives back an encoder's buffer after an unusually large item.
void trim_queue_encoder() noexcept;

std::shared_ptr<QueueCore> create_queue(QueueKind kind, std::uint64_t fingerprint, std::size_t maxsize);

// Puts the message `encoder` holds. Returns false when a bounded queue
// stayed full until `timeout` (or at once, if !block).
bool queue_put(QueueCore& core, const Encoder& encoder, bool block, QueueTimeout timeout);

// Takes an item and hands it to `sink`. Returns false when none came before
// `timeout` (or at once, if !block). The item is taken even if `sink` throws.
bool queue_get(QueueCore& core, ItemSink sink, void* context, bool block, QueueTimeout timeout);

std::size_t queue_size(const QueueCore& core) noexcept;
std::size_t queue_maxsize(const QueueCore& core) noexcept;

// Python's close(): later puts through this handle (and its copies) in this
// process are refused; a child forked afterwards starts with it open.
void queue_close(QueueCore& core) noexcept;
bool queue_closed(const QueueCore& core) noexcept;

// JoinableQueue: marks one item done; waits until every item put is done.
void queue_task_done(QueueCore& core);
bool queue_join(QueueCore& core, QueueTimeout timeout);

// Encodes a reference (the queue's descriptor), and decodes one, checking
// that it names a queue of `kind` carrying `fingerprint` items.
void save_queue(Encoder& encoder, const QueueCore& core);
std::shared_ptr<QueueCore> load_queue(Decoder& decoder, QueueKind kind, std::uint64_t fingerprint);

// For tests: called while this process holds a claim on a slot (between
// claiming it and writing or taking its item) or the heap lock (in the
// middle of appending to the spill list), to die there on purpose.
enum class QueueClaim { writing, reading, spilling };
extern void (*queue_claim_hook)(QueueClaim);

}  // namespace mproc::detail
