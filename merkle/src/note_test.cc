#include "vellum/merkle/note.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>

#include "vellum/base/bytes.h"

namespace vellum::merkle {
namespace {

nlohmann::json LoadVectors() {
  std::ifstream in(VELLUM_SHARED_DIR "/vectors/tlog-vectors.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// The example of golang.org/x/mod/sumdb/note's documentation: Ed25519 is
// deterministic, so signing kGoText with kGoSkey must give kGoNote exactly.
constexpr std::string_view kGoSkey =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr std::string_view kGoVkey =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr std::string_view kGoText =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
constexpr std::string_view kGoNote =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\xe2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

// Naive RFC 9162 tree hash, the model the checkpoint roots are checked against.
Hash NaiveRoot(std::span<const std::string> leaves) {
  if (leaves.empty()) return Sha256Of("");
  if (leaves.size() == 1) return Sha256Of(std::string(1, '\0') + leaves[0]);
  size_t k = 1;
  while (2 * k < leaves.size()) k *= 2;
  return Sha256Of("\x01" + std::string(HashView(NaiveRoot(leaves.first(k)))) +
                  std::string(HashView(NaiveRoot(leaves.subspan(k)))));
}

NoteSigner MustGenerate(std::string_view name) {
  auto signer = NoteSigner::Generate(name);
  REQUIRE(signer.ok());
  return *signer;
}

std::string MustSign(const NoteSigner& signer, std::string_view body) {
  auto note = signer.Sign(body);
  REQUIRE(note.ok());
  return *note;
}

// The signature lines of a note (everything after the last blank line).
std::string SignatureLines(const std::string& note) { return note.substr(note.rfind("\n\n") + 2); }

bool IsVerificationFailure(const Status& s, std::string_view check) {
  return s.code() == StatusCode::kDataLoss && s.verification() != nullptr &&
         s.verification()->check == check;
}

Checkpoint SampleCheckpoint(std::string origin) {
  Checkpoint c;
  c.origin = std::move(origin);
  c.size = 42;
  c.root = Sha256Of("root");
  return c;
}

TEST_CASE("C2SP signed-note example verifies", "[merkle][note]") {
  const auto v = LoadVectors()["signed_note_example"];
  auto verifier = NoteVerifier::Parse(v["vkey"].get<std::string>());
  REQUIRE(verifier.ok());
  CHECK(verifier->name() == "example.com/foo");
  CHECK(verifier->key_id() == 0x530d903au);
  CHECK(verifier->ToString() == v["vkey"].get<std::string>());

  auto body = VerifyNote(v["note"].get<std::string>(), *verifier);
  REQUIRE(body.ok());
  CHECK(*body == "This is an example message.\n");
}

TEST_CASE("Key ID is SHA-256(name || 0x0A || 0x01 || key)[:4]", "[merkle][note]") {
  auto verifier = NoteVerifier::Parse(kGoVkey);
  REQUIRE(verifier.ok());
  const auto& pk = verifier->public_key();
  const Hash h = Sha256Of("PeterNeumann\n\x01" +
                          std::string(reinterpret_cast<const char*>(pk.data()), pk.size()));
  CHECK(HexEncode(HashView(h).substr(0, 4)) == "c74f20a3");
  CHECK(NoteKeyId("PeterNeumann", pk) == 0xc74f20a3u);
  CHECK(verifier->key_id() == 0xc74f20a3u);
  CHECK(NoteKeyId("PeterNeumann2", pk) != 0xc74f20a3u);
}

TEST_CASE("Go sumdb/note signing example is reproduced byte for byte", "[merkle][note]") {
  auto signer = NoteSigner::ParseSkey(kGoSkey);
  REQUIRE(signer.ok());
  CHECK(signer->name() == "PeterNeumann");
  CHECK(signer->key_id() == 0xc74f20a3u);
  CHECK(signer->Skey() == kGoSkey);
  CHECK(signer->Vkey() == kGoVkey);
  auto note = signer->Sign(kGoText);
  REQUIRE(note.ok());
  CHECK(*note == kGoNote);

  auto verifier = NoteVerifier::Parse(kGoVkey);
  REQUIRE(verifier.ok());
  auto body = VerifyNote(kGoNote, *verifier);
  REQUIRE(body.ok());
  CHECK(*body == kGoText);
}

TEST_CASE("Tessera test log checkpoints verify and match the naive tree", "[merkle][note]") {
  const auto v = LoadVectors()["tlog_tiles_example"];
  auto verifier = NoteVerifier::Parse(v["vkey"].get<std::string>());
  REQUIRE(verifier.ok());
  CHECK(verifier->name() == v["origin"].get<std::string>());
  const auto entries = v["entries_utf8"].get<std::vector<std::string>>();

  size_t checked = 0;
  for (const auto& item : v["checkpoints"].items()) {
    INFO("checkpoint " << item.key());
    const std::uint64_t n = std::stoull(item.key());
    const auto& note = item.value();
    auto c = VerifyCheckpoint(note.get<std::string>(), *verifier);
    REQUIRE(c.ok());
    CHECK(c->origin == v["origin"].get<std::string>());
    CHECK(c->size == n);
    CHECK(c->extensions.empty());
    REQUIRE(n <= entries.size());
    CHECK(HashHex(c->root) == HashHex(NaiveRoot(std::span(entries).first(n))));
    // The body is canonical: formatting the parsed checkpoint gives it back.
    auto body = VerifyNote(note.get<std::string>(), *verifier);
    REQUIRE(body.ok());
    CHECK(FormatCheckpointBody(*c) == *body);
    ++checked;
  }
  CHECK(checked == 16);
}

TEST_CASE("Generate, sign and verify round-trip", "[merkle][note]") {
  const NoteSigner signer = MustGenerate("vellum.example/log");
  const NoteSigner other = MustGenerate("vellum.example/log");
  CHECK(signer.key_id() != other.key_id());  // fresh keys (2^-32 chance of a false failure)

  auto verifier = NoteVerifier::Parse(signer.Vkey());
  REQUIRE(verifier.ok());
  CHECK(verifier->key_id() == signer.key_id());
  CHECK(verifier->public_key() == signer.verifier().public_key());

  const std::string body = FormatCheckpointBody(SampleCheckpoint("vellum.example/log"));
  const std::string note = MustSign(signer, body);
  CHECK(note.starts_with(body + "\n\xe2\x80\x94 vellum.example/log "));
  auto verified = VerifyNote(note, *verifier);
  REQUIRE(verified.ok());
  CHECK(*verified == body);
  auto c = VerifyCheckpoint(note, *verifier);
  REQUIRE(c.ok());
  CHECK(*c == SampleCheckpoint("vellum.example/log"));

  // The stored private key reproduces the same signer.
  auto reloaded = NoteSigner::ParseSkey(signer.Skey());
  REQUIRE(reloaded.ok());
  CHECK(reloaded->Vkey() == signer.Vkey());
  CHECK(MustSign(*reloaded, body) == note);

  // Bodies may contain empty lines and non-ASCII text.
  const std::string tricky = "caf\xc3\xa9\n\nline after a blank\n\n";
  auto tricky_body = VerifyNote(MustSign(signer, tricky), *verifier);
  REQUIRE(tricky_body.ok());
  CHECK(*tricky_body == tricky);
}

TEST_CASE("Signatures by other keys are ignored, cosignatures accepted", "[merkle][note]") {
  const NoteSigner log = MustGenerate("log.example");
  const NoteSigner witness = MustGenerate("witness.example");
  const NoteSigner same_name = MustGenerate("log.example");
  const NoteVerifier& v = log.verifier();
  const std::string body = FormatCheckpointBody(SampleCheckpoint("log.example"));
  const std::string log_note = MustSign(log, body);

  // Witness signature first, then the log's.
  const std::string both =
      body + "\n" + SignatureLines(MustSign(witness, body)) + SignatureLines(log_note);
  CHECK(VerifyNote(both, v).ok());
  // Same name, different key ID: ignored.
  const std::string with_same_name =
      body + "\n" + SignatureLines(MustSign(same_name, body)) + SignatureLines(log_note);
  CHECK(VerifyNote(with_same_name, v).ok());

  // Only signatures by unknown keys: no signature by this key.
  const std::string unknown_only = body + "\n" + SignatureLines(MustSign(witness, body)) +
                                   SignatureLines(MustSign(same_name, body));
  auto r = VerifyNote(unknown_only, v);
  CHECK(IsVerificationFailure(r.status(), "note.signature"));
  CHECK(r.status().verification()->expected.find("log.example+") != std::string::npos);

  // Same key ID, different name: ignored (the line below claims log's key ID under another name).
  std::string renamed = log_note;
  renamed.replace(renamed.rfind("log.example"), 11, "log.exampla");
  CHECK(IsVerificationFailure(VerifyNote(renamed, v).status(), "note.signature"));
}

TEST_CASE("Checkpoint bodies format and parse round-trip", "[merkle][note]") {
  Checkpoint c = SampleCheckpoint("example.com/log");
  CHECK(FormatCheckpointBody(c) == "example.com/log\n42\n" + Base64Encode(HashView(c.root)) + "\n");
  for (std::uint64_t size :
       {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{10}, ~std::uint64_t{0}}) {
    c.size = size;
    for (size_t n_ext = 0; n_ext < 3; ++n_ext) {
      c.extensions.clear();
      for (size_t i = 0; i < n_ext; ++i)
        c.extensions.push_back("ext " + std::to_string(i) + " \xe2\x9c\x93");
      auto parsed = ParseCheckpointBody(FormatCheckpointBody(c));
      REQUIRE(parsed.ok());
      CHECK(*parsed == c);
    }
  }
}

TEST_CASE("Malformed checkpoint bodies are rejected", "[merkle][note]") {
  const std::string root = Base64Encode(HashView(Sha256Of("r")));
  const auto bad = [](std::string_view body) {
    auto r = ParseCheckpointBody(body);
    return !r.ok() && r.status().code() == StatusCode::kInvalidArgument;
  };
  CHECK(ParseCheckpointBody("o\n0\n" + root + "\n").ok());
  CHECK(bad("o\n0\n" + root));           // missing trailing newline
  CHECK(bad("\n0\n" + root + "\n"));     // empty origin
  CHECK(bad("o\n007\n" + root + "\n"));  // leading zeros
  CHECK(bad("o\n00\n" + root + "\n"));
  CHECK(bad("o\n\n" + root + "\n"));  // empty size
  CHECK(bad("o\n-1\n" + root + "\n"));
  CHECK(bad("o\n+1\n" + root + "\n"));
  CHECK(bad("o\n1 \n" + root + "\n"));
  CHECK(bad("o\n18446744073709551616\n" + root + "\n"));  // 2^64
  CHECK(ParseCheckpointBody("o\n18446744073709551615\n" + root + "\n").ok());
  CHECK(bad("o\n1\n" + Base64Encode(std::string(31, 'x')) + "\n"));          // 31-byte root
  CHECK(bad("o\n1\n" + Base64Encode(std::string(33, 'x')) + "\n"));          // 33-byte root
  CHECK(bad("o\n1\n" + root.substr(0, root.size() - 1) + "\n"));             // missing padding
  CHECK(bad("o\n1\n" + root.substr(0, 10) + "!" + root.substr(11) + "\n"));  // bad base64
  CHECK(bad("o\n1\n\n"));                                                    // empty root
  CHECK(bad("o\n1\n"));                                                      // no root line
  CHECK(bad("o\n1\n" + root + "\n\n"));                                      // empty extension line
  CHECK(bad("o\n1\n" + root + "\next\n\n"));
  CHECK(bad("o\r\n1\n" + root + "\n"));      // control character
  CHECK(bad("o\n1\n" + root + "\n\xff\n"));  // invalid UTF-8
  auto r = ParseCheckpointBody("o\n007\n" + root + "\n");
  CHECK(r.status().message().find("leading zero") != std::string::npos);
}

TEST_CASE("Tampered or malformed notes must fail", "[merkle][note]") {
  const NoteSigner signer = MustGenerate("log.example");
  const NoteVerifier& v = signer.verifier();
  const std::string body = FormatCheckpointBody(SampleCheckpoint("log.example"));
  const std::string note = MustSign(signer, body);
  REQUIRE(VerifyNote(note, v).ok());
  const auto code = [&](std::string_view n) { return VerifyNote(n, v).status().code(); };

  SECTION("flipped byte in the body") {
    for (size_t i = 0; i < body.size() - 1; ++i) {
      std::string t = note;
      t[i] = static_cast<char>(t[i] == 'A' ? 'B' : 'A');
      if (t[i] == '\n' || note[i] == '\n') continue;
      INFO("offset " << i);
      CHECK(IsVerificationFailure(VerifyNote(t, v).status(), "note.signature"));
    }
  }
  SECTION("flipped bit in the signature") {
    const std::string line = SignatureLines(note);
    const std::string b64 = line.substr(line.rfind(' ') + 1, line.size() - line.rfind(' ') - 2);
    std::string raw = *Base64Decode(b64);
    for (size_t i = 4; i < raw.size(); i += 7) {
      std::string bad = raw;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      std::string t = note.substr(0, note.size() - b64.size() - 1) + Base64Encode(bad) + "\n";
      INFO("signature byte " << i);
      auto r = VerifyNote(t, v);
      REQUIRE(IsVerificationFailure(r.status(), "note.signature"));
      CHECK(r.status().verification()->expected.find("log.example+") != std::string::npos);
    }
    // A signature of the wrong length by this key does not verify either.
    std::string t =
        note.substr(0, note.size() - b64.size() - 1) + Base64Encode(raw.substr(0, 67)) + "\n";
    CHECK(IsVerificationFailure(VerifyNote(t, v).status(), "note.signature"));
  }
  SECTION("a bad signature by this key rejects the note even beside a good one") {
    std::string flipped = note;
    const size_t sig_at = note.rfind(' ') + 10;
    flipped[sig_at] = static_cast<char>(flipped[sig_at] == 'A' ? 'B' : 'A');
    const std::string t = body + "\n" + SignatureLines(note) + SignatureLines(flipped);
    CHECK(IsVerificationFailure(VerifyNote(t, v).status(), "note.signature"));
  }
  SECTION("wrong key") {
    const NoteSigner other = MustGenerate("log.example");
    CHECK(IsVerificationFailure(VerifyNote(note, other.verifier()).status(), "note.signature"));
    const NoteSigner other_name = MustGenerate("other.example");
    CHECK(
        IsVerificationFailure(VerifyNote(note, other_name.verifier()).status(), "note.signature"));
  }
  SECTION("truncated note") {
    for (size_t n = 0; n < note.size(); ++n) {
      INFO("length " << n);
      CHECK_FALSE(VerifyNote(note.substr(0, n), v).ok());
    }
  }
  SECTION("structure") {
    CHECK(code(body + SignatureLines(note)) == StatusCode::kInvalidArgument);  // missing blank line
    CHECK(code(note.substr(0, note.size() - 1)) ==
          StatusCode::kInvalidArgument);                       // missing final newline
    CHECK(code(body + "\n") == StatusCode::kInvalidArgument);  // no signatures
    CHECK(code(note + "\n") == StatusCode::kInvalidArgument);  // blank line at the end
    CHECK(code(body + "\n- log.example AAAAAAA=\n") ==
          StatusCode::kInvalidArgument);  // hyphen, not em dash
    CHECK(code(body + "\n\xe2\x80\x94 log.example\n") == StatusCode::kInvalidArgument);
    CHECK(code(body + "\n\xe2\x80\x94 log.example AAAA\n") ==
          StatusCode::kInvalidArgument);  // 3 bytes < 5
    CHECK(code(body + "\n\xe2\x80\x94 log.example AAAAAAA\n") ==
          StatusCode::kInvalidArgument);  // bad base64
    CHECK(code(body + "\n\xe2\x80\x94 log.example AAAA!AA=\n") == StatusCode::kInvalidArgument);
    CHECK(code(body + "\n\xe2\x80\x94 log+example AAAAAAA=\n") ==
          StatusCode::kInvalidArgument);                                               // bad name
    CHECK(code(body + "\n\xe2\x80\x94  AAAAAAA=\n") == StatusCode::kInvalidArgument);  // empty name
  }
  SECTION("control characters and invalid UTF-8") {
    for (char ch : {'\0', '\t', '\r', '\x1b', '\x1f'}) {
      std::string t = note;
      t.insert(3, 1, ch);
      INFO("control " << int(ch));
      CHECK(code(t) == StatusCode::kInvalidArgument);
    }
    std::string t = note;
    t.insert(3, "\xc0\xaf");  // overlong '/'
    CHECK(code(t) == StatusCode::kInvalidArgument);
    CHECK_FALSE(signer.Sign("a\tb\n").ok());
    CHECK_FALSE(signer.Sign("a\xff\n").ok());
    CHECK_FALSE(signer.Sign("no newline").ok());
    CHECK_FALSE(signer.Sign("").ok());
  }
  SECTION("limits") {
    std::string many = body + "\n";
    const NoteSigner witness = MustGenerate("w.example");
    const std::string wline = SignatureLines(MustSign(witness, body));
    for (size_t i = 0; i < kMaxNoteSignatures; ++i) many += wline;
    CHECK(code(many + SignatureLines(note)) == StatusCode::kInvalidArgument);  // 101 lines
    std::string sixteen = body + "\n";
    for (size_t i = 0; i < 15; ++i) sixteen += wline;
    CHECK(VerifyNote(sixteen + SignatureLines(note), v).ok());
    const std::string huge(kMaxNoteSize, 'a');
    CHECK(code(huge + "\n\n" + SignatureLines(note)) == StatusCode::kInvalidArgument);
    CHECK_FALSE(signer.Sign(huge + "\n").ok());
  }
}

TEST_CASE("Checkpoint origin must match the verifier", "[merkle][note]") {
  const NoteSigner signer = MustGenerate("log.example");
  const std::string note =
      MustSign(signer, FormatCheckpointBody(SampleCheckpoint("other.example")));
  CHECK(VerifyNote(note, signer.verifier()).ok());
  auto r = VerifyCheckpoint(note, signer.verifier());
  REQUIRE(IsVerificationFailure(r.status(), "checkpoint.origin"));
  CHECK(r.status().verification()->expected == "log.example");
  CHECK(r.status().verification()->computed == "other.example");

  // A verified note that is not a checkpoint is InvalidArgument.
  auto not_checkpoint = VerifyCheckpoint(MustSign(signer, "hello\n"), signer.verifier());
  CHECK(not_checkpoint.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Key names and key strings are validated", "[merkle][note]") {
  CHECK(IsValidNoteKeyName("example.com/log"));
  CHECK(IsValidNoteKeyName("caf\xc3\xa9"));
  CHECK_FALSE(IsValidNoteKeyName(""));
  CHECK_FALSE(IsValidNoteKeyName("a+b"));
  CHECK_FALSE(IsValidNoteKeyName("a b"));
  CHECK_FALSE(IsValidNoteKeyName("a\tb"));
  CHECK_FALSE(IsValidNoteKeyName("a\nb"));
  CHECK_FALSE(
      IsValidNoteKeyName("a\x7f"
                         "b"));
  CHECK_FALSE(
      IsValidNoteKeyName("a\xc2\xa0"
                         "b"));  // U+00A0 no-break space
  CHECK_FALSE(
      IsValidNoteKeyName("a\xe3\x80\x80"
                         "b"));  // U+3000 ideographic space
  CHECK_FALSE(IsValidNoteKeyName("a\xff"));
  CHECK_FALSE(NoteSigner::Generate("bad name").ok());
  CHECK_FALSE(NoteSigner::Generate("").ok());

  const auto bad_vkey = [](std::string_view s) {
    auto r = NoteVerifier::Parse(s);
    return !r.ok() && r.status().code() == StatusCode::kInvalidArgument;
  };
  const std::string key_b64 = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
  CHECK_FALSE(bad_vkey(kGoVkey));
  CHECK(bad_vkey("PeterNeumann+C74F20A3+" + key_b64));   // uppercase key ID
  CHECK(bad_vkey("PeterNeumann+c74f20a4+" + key_b64));   // wrong key ID
  CHECK(bad_vkey("PeterNeumann+c74f20a+" + key_b64));    // 7 digits
  CHECK(bad_vkey("PeterNeumanm+c74f20a3+" + key_b64));   // name does not match the ID
  CHECK(bad_vkey("+c74f20a3+" + key_b64));               // empty name
  CHECK(bad_vkey("Peter Neumann+c74f20a3+" + key_b64));  // space in name
  CHECK(bad_vkey("PeterNeumann+c74f20a3"));              // no key
  CHECK(bad_vkey("PeterNeumann"));
  CHECK(bad_vkey("PeterNeumann+c74f20a3+" + key_b64.substr(0, 43)));  // bad base64
  std::string raw = *Base64Decode(key_b64);
  raw[0] = 0x02;  // not Ed25519
  CHECK(bad_vkey("PeterNeumann+c74f20a3+" + Base64Encode(raw)));
  raw[0] = 0x01;
  CHECK(bad_vkey("PeterNeumann+c74f20a3+" + Base64Encode(raw.substr(0, 32))));  // 31-byte key
  CHECK(bad_vkey("PeterNeumann+c74f20a3+" + Base64Encode(raw + "x")));          // 33-byte key

  CHECK_FALSE(NoteSigner::ParseSkey(kGoVkey).ok());  // no PRIVATE+KEY+
  CHECK_FALSE(NoteSigner::ParseSkey(
                  "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
                  .ok());
  CHECK_FALSE(NoteSigner::ParseSkey(
                  "PRIVATE+KEY+PeterNeumanm+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
                  .ok());
  CHECK_FALSE(NoteSigner::ParseSkey(
                  "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF")
                  .ok());
}

}  // namespace
}  // namespace vellum::merkle
