// The SE applet (src/se/applet.h) in-process, driven through the terminal's
// SeClient as a wallet drives it: every call is a real APDU with JSON data.
// An SE-to-SE payment touches no server; these are its whole cost on the
// devices, apart from the link and (for the emulator) sealing the state file,
// which se/Device* measures.
#include <benchmark/benchmark.h>

#include "bench_world.h"

namespace zf::bench {
namespace {

Json one_fen_to(const std::string& payee_cert) {
  return Json{{"amount", 1}, {"currency", kCurrency}, {"payee_cert", payee_cert}};
}

// Payer SE: check user, limits and balance, debit, sign a payment.note (ES256).
void PaymentNote(benchmark::State& state) {
  SeWorld& w = shared_world<SeWorld>();
  Json params = one_fen_to(w.payee_cert);
  for (auto _ : state) {
    auto note = w.payer->payment_note(params);
    if (failed(state, note)) break;
    benchmark::DoNotOptimize(note);
  }
  state.SetItemsProcessed(state.iterations());
}

// Payee SE: open the note (signature, chain to the root, role, CRL, strict
// payload), check payee, payer, replay and limits, open the registry's record
// of its won claim (a second signature and chain), credit.
void ReceiveNote(benchmark::State& state) {
  SeWorld& w = shared_world<SeWorld>();
  Json params = one_fen_to(w.payee_cert);
  std::vector<std::string> notes, records;
  std::size_t next = 0;
  for (auto _ : state) {
    if (next == notes.size()) {
      // Fresh notes from the payer (each id is credited once), made untimed.
      state.PauseTiming();
      notes.clear();
      records.clear();
      next = 0;
      for (int i = 0; i < 64; ++i) {
        notes.push_back(must(w.payer->payment_note(params), "payment note").at("note"));
        records.push_back(w.record_for(notes.back()));
      }
      state.ResumeTiming();
    }
    auto r = w.payee->receive_note(notes[next], records[next]);
    ++next;
    if (failed(state, r)) break;
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// Payee SE with a top-up receipt: open it (custody chain, CRL), match it to
// the pending request, credit exactly once.
void ApplyTopupReceipt(benchmark::State& state) {
  SeWorld& w = shared_world<SeWorld>();
  Json params{{"amount", 1}, {"currency", kCurrency}, {"bank", kBankId}, {"account", kAccount}};
  std::vector<std::string> receipts;
  std::size_t next = 0;
  for (auto _ : state) {
    if (next == receipts.size()) {
      // The applet keeps at most 16 requests awaiting receipts.
      state.PauseTiming();
      receipts.clear();
      next = 0;
      for (int i = 0; i < 16; ++i) {
        Json r = must(w.payee->topup_request(params), "topup request");
        receipts.push_back(w.topup_receipt(jws_payload(r.at("request"))));
      }
      state.ResumeTiming();
    }
    auto r = w.payee->apply_topup_receipt(receipts[next++]);
    if (failed(state, r)) break;
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  // Settle what this run left pending, so the next run has room for 16 more.
  for (; next < receipts.size(); ++next) (void)w.payee->apply_topup_receipt(receipts[next]);
}

// The emulated device: the same payment note, then the new state is sealed
// (AES-256-GCM) and replaced atomically (write, fsync, rename, fsync dir)
// before the answer leaves the SE. Wall time: the disk is part of it.
void DevicePaymentNote(benchmark::State& state) {
  SeDeviceWorld& w = shared_world<SeDeviceWorld>();
  Json params = one_fen_to(w.payee_cert);
  for (auto _ : state) {
    auto note = w.client->payment_note(params);
    if (failed(state, note)) break;
    benchmark::DoNotOptimize(note);
  }
  state.SetItemsProcessed(state.iterations());
}

// What the paired link adds per command: the terminal seals a 2 KiB command
// (about a note with its certificate), the SE opens it, seals a 2 KiB answer,
// the terminal opens that (AES-256-GCM, both directions).
void SecureFrameRoundTrip(benchmark::State& state) {
  Bytes key = random_bytes(se::sc::kKeyBytes), host = random_bytes(16), card = random_bytes(16);
  auto t = must(se::sc::Session::derive(key, host, card, "se-x", se::sc::Session::Side::terminal), "session");
  auto s = must(se::sc::Session::derive(key, host, card, "se-x", se::sc::Session::Side::se), "session");
  se::Command cmd{0x80, se::ins::kReceiveNote, 0, 0, random_bytes(2048), 65536u};
  se::Response answer{random_bytes(2048), 0x9000};
  for (auto _ : state) {
    auto frame = t.wrap_command(cmd);
    auto inner = s.unwrap_command(must(se::parse_command(*frame), "parse"));
    Bytes reply = se::encode_response(s.wrap_response(answer));
    auto opened = t.unwrap_response(reply);
    if (!inner || !opened) {
      state.SkipWithError("secure frame did not open");
      break;
    }
    benchmark::DoNotOptimize(opened);
  }
  state.SetItemsProcessed(state.iterations());
}

// Opening a session (once per terminal connection): challenges, HKDF, two cryptograms.
void Authenticate(benchmark::State& state) {
  SeWorld& w = shared_world<SeWorld>();
  for (auto _ : state) {
    auto s = w.payer->authenticate();
    if (failed(state, s)) break;
  }
  state.SetItemsProcessed(state.iterations());
  must(w.payer->verify_pin(kPin), "verify PIN");
}

BENCHMARK(PaymentNote)->Name("se/PaymentNote");
BENCHMARK(SecureFrameRoundTrip)->Name("se/SecureFrameRoundTrip");
BENCHMARK(Authenticate)->Name("se/Authenticate");
BENCHMARK(ReceiveNote)->Name("se/ReceiveNote");
BENCHMARK(ApplyTopupReceipt)->Name("se/ApplyTopupReceipt");
BENCHMARK(DevicePaymentNote)->Name("se/DevicePaymentNote")->UseRealTime();

}  // namespace
}  // namespace zf::bench
