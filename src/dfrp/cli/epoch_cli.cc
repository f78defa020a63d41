// dfrp-ledger epoch-change: one committee member leads the change to the next epoch
// (ledger/epoch.h; docs/PROTOCOL.md, "Epoch change").
//
//   1. It seals the current epoch at every authority (its signed seal): they stop voting.
//   2. It asks every authority its state until a quorum of sealed ones report one checkpoint
//      twice in a row (their ledger sync pulls what each other applied, once a second).
//   3. It proposes the next epoch with that checkpoint and gathers a quorum of votes (each
//      authority votes only for its own state, and for one proposal).
//   4. It aggregates them into the epoch certificate and sends it to every authority; one that
//      lags applies it once it has caught up (its ledger sync also pulls it from the others).
//
// Nothing here is trusted by the authorities: each checks the seal's signature, the proposal
// against its own state, and the certificate's quorum.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "dfrp/cli/ledger_cli_internal.h"
#include "dfrp/core/bytes.h"
#include "dfrp/ledger/epoch.h"

namespace dfrp::cli {

using core::Err;
using core::Result;
using core::Status;
using nlohmann::json;

namespace {

// How long the epoch certificate is sent again to authorities that did not take it yet.
constexpr int64_t kResendMillis = 10'000;

struct Reported {
  uint64_t epoch = 0;
  bool sealed = false;
  ledger::Checkpoint checkpoint;
};

// An authority's GET /v1/ledger/epoch.
Result<Reported> AskEpoch(ledger::LedgerClient& client, size_t a) {
  DFRP_ASSIGN_OR_RETURN(json j, client.Get(a, "/v1/ledger/epoch"));
  Reported r;
  try {
    r.epoch = j.at("epoch").get<uint64_t>();
    r.sealed = j.at("sealed").get<bool>();
    const json& cp = j.at("checkpoint");
    r.checkpoint.certificates = cp.at("certificates").get<uint64_t>();
    r.checkpoint.settlements = cp.at("settlements").get<uint64_t>();
    auto state = core::FromHex(cp.at("state").get<std::string>());
    if (!state || state->size() != r.checkpoint.state.size()) throw std::runtime_error("state");
    std::memcpy(r.checkpoint.state.data(), state->data(), state->size());
  } catch (const std::exception&) {
    return Err(Status::IOError(
        fmt::format("authority {} ({}) answered a malformed epoch state", a, client.url(a))));
  }
  return r;
}

std::string CheckpointText(const ledger::Checkpoint& cp) {
  return fmt::format("{} certificates, {} settlements, state {}", cp.certificates, cp.settlements,
                     core::ToHex(cp.state).substr(0, 16));
}

}  // namespace

Status CmdEpochChange(const LedgerGlobals& g, core::FileSystem* fs, core::Clock* clock,
                      const economy::EconomicPolicy& p, const EpochChangeFlags& f) {
  DFRP_ASSIGN_OR_RETURN(OpenedWallet w, OpenWalletForOrders(fs, f.wallet, f.passphrase_file));
  DFRP_ASSIGN_OR_RETURN(ledger::LedgerClient client, ledger::LedgerClient::Make(p));
  const auto index = client.committee().IndexOf(w.key->GetPublicKey().bytes());
  if (!index)
    return Status::InvalidArgument(fmt::format(
        "the wallet {} ({}) is not a member of the committee in {}: an epoch change is led by "
        "one of them",
        f.wallet, w.address, p.source));
  DFRP_ASSIGN_OR_RETURN(const uint64_t epoch, client.RefreshEpoch());
  const crypto::Hash& net = p.network_id;
  const size_t n = client.size(), quorum = client.quorum();
  const ledger::Committee committee = client.committee().AtEpoch(epoch);
  const int64_t deadline = clock->NowUnixMillis() + int64_t{f.timeout_seconds} * 1000;
  auto log = [&](const std::string& line) {
    if (!g.json) std::fprintf(stderr, "dfrp-ledger: %s\n", line.c_str());
  };

  // 1. The seal.
  const ledger::Vote seal = ledger::SignVote(ledger::SealItemHash(epoch, net), epoch,
                                             static_cast<uint32_t>(*index), *w.key, net);
  const json seal_body{{"seal", core::ToHex(ledger::EncodeVote(seal))}};
  std::vector<bool> sealed(n, false);
  auto seal_all = [&]() {
    for (size_t a = 0; a < n; ++a)
      if (!sealed[a]) sealed[a] = client.Post(a, "/v1/ledger/epoch/seal", seal_body).has_value();
  };
  seal_all();
  log(fmt::format("epoch {}: sealed at {} of {} authorities", epoch,
                  std::count(sealed.begin(), sealed.end(), true), n));

  // 2. Wait for a quorum of sealed authorities to hold one state, twice in a row.
  std::optional<ledger::Checkpoint> agreed, last;
  std::string why = "no authority answered";
  while (!agreed) {
    seal_all();
    std::map<std::string, std::pair<ledger::Checkpoint, size_t>> groups;
    std::vector<std::string> notes;
    for (size_t a = 0; a < n; ++a) {
      auto r = AskEpoch(client, a);
      if (!r) {
        notes.push_back(fmt::format("authority {}: {}", a, r.error().message()));
        continue;
      }
      if (r->epoch > epoch) {
        // Someone finished this change already.
        json out{{"epoch", r->epoch}, {"already", true}};
        if (g.json)
          std::printf("%s\n", out.dump(2).c_str());
        else
          std::printf("the committee is at epoch %llu already (authority %zu)\n",
                      static_cast<unsigned long long>(r->epoch), a);
        return Status::OK();
      }
      if (!r->sealed) continue;
      auto& grp = groups[std::string(crypto::HashBytes(r->checkpoint.state)) +
                         std::to_string(r->checkpoint.certificates) + "/" +
                         std::to_string(r->checkpoint.settlements)];
      grp.first = r->checkpoint;
      ++grp.second;
      notes.push_back(fmt::format("authority {}: {}", a, CheckpointText(r->checkpoint)));
    }
    for (const auto& [key, grp] : groups)
      if (grp.second >= quorum) {
        if (last && *last == grp.first) agreed = grp.first;
        last = grp.first;
      }
    if (agreed) break;
    why = fmt::format("no {} sealed authorities hold one state yet", quorum);
    for (const auto& note : notes) why += "; " + note;
    if (clock->NowUnixMillis() >= deadline)
      return Status::Busy(fmt::format(
          "epoch change {} to {}: {} after {} s (run it again: it goes on where it stopped)", epoch,
          epoch + 1, why, f.timeout_seconds));
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  }
  log(fmt::format("epoch {}: a quorum holds {}", epoch, CheckpointText(*agreed)));

  // 3. The proposal and its votes.
  const ledger::EpochProposal proposal =
      ledger::MakeEpochProposal(epoch, client.committee(), p.version, *agreed, net);
  const json proposal_body{{"proposal", core::ToHex(ledger::EpochProposalBytes(proposal, net))}};
  std::vector<std::optional<ledger::Vote>> votes(n);
  for (;;) {
    std::vector<std::string> notes;
    for (size_t a = 0; a < n; ++a) {
      if (votes[a]) continue;
      auto r = client.Post(a, "/v1/ledger/epoch/proposals", proposal_body);
      auto bytes = r && r->contains("vote") && (*r)["vote"].is_string()
                       ? core::FromHex((*r)["vote"].get<std::string>())
                       : std::nullopt;
      auto vote =
          bytes
              ? ledger::DecodeVote(*bytes)
              : Result<ledger::Vote>(Err(r ? Status::IOError("no vote in the answer") : r.error()));
      Status ok = vote ? ledger::VerifyVote(*vote, committee, net) : vote.error();
      if (ok.ok() && (vote->order_hash != proposal.hash || vote->authority != a))
        ok = Status::Corruption("a vote for something else or from another authority");
      if (!ok.ok()) {
        notes.push_back(fmt::format("authority {}: {}", a, ok.message()));
        continue;
      }
      votes[a] = *vote;
    }
    const size_t have = std::count_if(votes.begin(), votes.end(), [](auto& v) { return !!v; });
    if (have >= quorum) break;
    if (clock->NowUnixMillis() >= deadline) {
      std::string msg =
          fmt::format("epoch change {} to {}: {} votes of the {} needed for the proposal at {}",
                      epoch, epoch + 1, have, quorum, CheckpointText(*agreed));
      for (const auto& note : notes) msg += "; " + note;
      return Status::Busy(msg + " (run it again later)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  }
  std::vector<ledger::Vote> got;
  for (const auto& v : votes)
    if (v) got.push_back(*v);
  DFRP_ASSIGN_OR_RETURN(ledger::EpochCertificate cert,
                        ledger::MakeEpochCertificate(proposal, got, committee));
  const std::string cert_hex = core::ToHex(ledger::EncodeEpochCertificate(cert, net));

  // 4. The certificate, to everyone. An authority outside the quorum may still lack what the
  // checkpoint holds (it answers that it is behind while its ledger sync catches up), so the
  // ones that said so are asked again for a few seconds, within the timeout.
  std::vector<bool> took(n, false), behind(n, false);
  std::vector<std::string> refusal(n);
  const int64_t resend_until = std::min(deadline, clock->NowUnixMillis() + kResendMillis);
  for (;;) {
    for (size_t a = 0; a < n; ++a) {
      if (took[a]) continue;
      auto r = client.Post(a, "/v1/ledger/epoch/certificates", json{{"certificate", cert_hex}});
      took[a] = r.has_value();
      refusal[a] = r ? std::string() : r.error().message();
      behind[a] = !r && r.error().IsNotFound();
    }
    if (std::none_of(behind.begin(), behind.end(), [](bool b) { return b; }) ||
        clock->NowUnixMillis() >= resend_until)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const size_t applied = std::count(took.begin(), took.end(), true);
  json authorities = json::array();
  for (size_t a = 0; a < n; ++a)
    authorities.push_back(
        {{"authority", a}, {"applied", took[a]}, {"note", took[a] ? json() : json(refusal[a])}});
  const json out{{"epoch", epoch + 1},
                 {"closed_epoch", epoch},
                 {"checkpoint",
                  {{"certificates", agreed->certificates},
                   {"settlements", agreed->settlements},
                   {"state", core::ToHex(agreed->state)}}},
                 {"proposal_hash", core::ToHex(proposal.hash)},
                 {"signers", got.size()},
                 {"applied_by", applied},
                 {"authorities", authorities},
                 {"certificate", cert_hex}};
  if (g.json)
    std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf(
        "epoch %llu begins: certified by %zu of %zu at %s; applied by %zu (the others follow "
        "once they catch up)\n",
        static_cast<unsigned long long>(epoch + 1), got.size(), n, CheckpointText(*agreed).c_str(),
        applied);
  if (applied < quorum)
    return Status::Busy(fmt::format(
        "the epoch certificate was applied by {} authorities, fewer than the quorum of {}: their "
        "ledger sync pulls it from the others; run epoch-change again to resend it",
        applied, quorum));
  return Status::OK();
}

}  // namespace dfrp::cli
