#include "dfrp/node/ledger_sync_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "dfrp/ledger/epoch.h"
#include "dfrp/ledger/escrow.h"
#include "dfrp/node/node.h"
#include "dfrp/node/routes.h"

namespace dfrp::node {

using core::Status;
using nlohmann::json;

namespace {

// Pages of one log read per peer per tick: a long backlog is worked off over several ticks,
// so a stop request is never kept waiting long.
constexpr int kPagesPerTick = 4;

}  // namespace

LedgerSyncService::LedgerSyncService(Node* node, core::Clock* clock, ledger::LedgerClient client,
                                     uint32_t self, int64_t tick_ms)
    : node_(node), client_(std::move(client)), self_(self), ticker_(clock, tick_ms) {
  core::MutexLock lock(&mu_);
  peers_.resize(client_.size());
}

void LedgerSyncService::Tick() {
  for (size_t peer = 0; peer < client_.size(); ++peer) {
    if (peer == self_) continue;
    if (ticker_.stopping()) return;
    Peer p;
    {
      core::MutexLock lock(&mu_);
      p = peers_[peer];
    }
    // Orders first: an escrow's opening is applied before its settlements are tried.
    if (Pull(peer, false, &p)) (void)Pull(peer, true, &p);
    PullEpochs(peer, &p);
    core::MutexLock lock(&mu_);
    peers_[peer] = std::move(p);
  }
  core::MutexLock lock(&mu_);
  last_tick_ms_ = node_->NowMs();
}

bool LedgerSyncService::Pull(size_t peer, bool settle, Peer* p) {
  ledger::Authority* a = node_->authority();
  const crypto::Hash& net = a->network_id();
  uint64_t* next = settle ? &p->settle_next : &p->log_next;
  const LedgerKind kind = settle ? kLedgerSettlement : kLedgerOrder;
  for (int page = 0; page < kPagesPerTick; ++page) {
    auto got = client_.Get(
        peer, fmt::format("/v1/ledger/{}?from={}", settle ? "settlement-log" : "log", *next));
    if (!got) {
      p->last_error = got.error().message();
      return false;
    }
    const json* list = got->contains("certificates") ? &(*got)["certificates"] : nullptr;
    if (!list || !list->is_array()) {
      ++p->rejected;
      p->last_error = "its log page has no certificates list";
      return false;
    }
    if (list->empty()) return true;
    for (const json& item : *list) {
      std::string wire;
      if (item.is_string()) {
        auto bytes = core::FromHex(item.get<std::string>());
        if (bytes) wire = std::move(*bytes);
      }
      Status s;
      bool applied_now = false;
      if (settle) {
        auto c = ledger::DecodeSettleCertificate(wire, net);
        if (!c) {
          s = c.error();
        } else {
          // Settled here already: skipped before the signature check.
          auto e = a->Escrow(c->settlement.escrow_id);
          const bool done =
              e && std::ranges::any_of(e->settled, [&](const ledger::PeriodSettled& ps) {
                return ps.period == c->settlement.period;
              });
          if (!done) {
            auto r = a->HandleSettleCertificate(*c);
            s = r.status();
            applied_now = r && *r == ledger::ApplyOutcome::kApplied;
          }
        }
      } else {
        auto c = ledger::DecodeCertificate(wire, net);
        if (!c) {
          s = c.error();
        } else {
          auto acct = a->Account(c->order.order.sender);
          if (!acct || c->order.order.seq >= acct->next_seq) {
            auto r = a->HandleCertificate(*c);
            s = r.status();
            applied_now = r && *r == ledger::ApplyOutcome::kApplied;
          }
        }
      }
      // Refused: a certificate of a closed epoch that its checkpoint does not hold (void),
      // never to be applied here either.
      if (s.ok() || s.code() == Status::Code::kInvalidArgument ||
          s.code() == Status::Code::kCorruption || s.code() == Status::Code::kRefused) {
        if (!s.ok() || applied_now) CountLedgerApply(node_->metrics(), kind, s, applied_now);
        if (applied_now) ++p->applied;
        if (!s.ok()) {
          // Never to be good: a forged or damaged entry, or a conflict the audit reports. It
          // is passed over, and this peer is read no further this tick: a faulty peer costs
          // at most one failed check per tick, not a page of them.
          ++p->rejected;
          p->last_error = fmt::format("entry {} of its {}: {}", *next,
                                      settle ? "settlement log" : "log", s.message());
          ++*next;
          return false;
        }
        ++*next;
        continue;
      }
      // Not yet (what it depends on is missing here) or a local failure: tried again on the
      // next tick from this entry.
      p->last_error = fmt::format("entry {} of its {}: {}", *next,
                                  settle ? "settlement log" : "log", s.message());
      return false;
    }
  }
  return true;
}

void LedgerSyncService::PullEpochs(size_t peer, Peer* p) {
  ledger::Authority* a = node_->authority();
  auto got = client_.Get(peer, fmt::format("/v1/ledger/epochs?after={}", a->epoch()));
  if (!got) return;  // the log pulls above say why
  if (got->contains("epoch") && (*got)["epoch"].is_number_unsigned())
    p->epoch = (*got)["epoch"].get<uint64_t>();
  const json* list = got->contains("certificates") ? &(*got)["certificates"] : nullptr;
  if (!list || !list->is_array()) return;
  for (const json& item : *list) {
    auto bytes = item.is_string() ? core::FromHex(item.get<std::string>()) : std::nullopt;
    auto c = bytes ? ledger::DecodeEpochCertificate(*bytes, a->network_id())
                   : core::Result<ledger::EpochCertificate>(core::Err(
                         Status::InvalidArgument("an epoch certificate that is not hex")));
    auto r = c ? a->HandleEpochCertificate(*c)
               : core::Result<ledger::ApplyOutcome>(core::Err(c.error()));
    if (!r) {
      // NotFound: not caught up with its checkpoint yet (the next ticks pull the rest).
      if (r.error().code() != Status::Code::kNotFound) ++p->rejected;
      p->last_error = fmt::format("its epoch certificates: {}", r.error().message());
      return;
    }
  }
}

json LedgerSyncService::Json() const {
  core::MutexLock lock(&mu_);
  json peers = json::array();
  for (size_t i = 0; i < peers_.size(); ++i) {
    if (i == self_) continue;
    const Peer& p = peers_[i];
    peers.push_back({{"authority", i},
                     {"url", client_.url(i)},
                     {"log_read", p.log_next - 1},
                     {"settlement_log_read", p.settle_next - 1},
                     {"applied", p.applied},
                     {"rejected", p.rejected},
                     {"epoch", p.epoch},
                     {"last_error", p.last_error.empty() ? json() : json(p.last_error)}});
  }
  return json{{"tick_ms", ticker_.period_ms()}, {"last_check_ms", last_tick_ms_}, {"peers", peers}};
}

uint64_t LedgerSyncService::applied() const {
  core::MutexLock lock(&mu_);
  uint64_t n = 0;
  for (const Peer& p : peers_) n += p.applied;
  return n;
}

}  // namespace dfrp::node
