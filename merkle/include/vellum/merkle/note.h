// Signed notes and log checkpoints: how a Vellum log commits to its tree head.
//
// A signed note (https://c2sp.org/signed-note) is UTF-8 text ending in a
// newline, a blank line, then one or more signature lines
//
//   — <key name> base64(4-byte big-endian key ID || signature)
//
// Vellum signs with Ed25519 only (signature type 0x01), and the key ID is
//
//   key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]
//
// A checkpoint (https://c2sp.org/tlog-checkpoint) is the note text
//
//   <origin>\n<tree size, decimal>\n<base64 root hash>\n[<extension>\n]...
//
// signed by the log's key; Vellum's log key name is the origin.
//
// Invariants:
//  - Parsing is strict and canonical: everything Parse* accepts is re-emitted
//    byte for byte by the matching Format/ToString function.
//  - A note's text is trusted only as the return value of VerifyNote or
//    VerifyCheckpoint; the other parsers check syntax, never signatures.
//  - Signatures by keys the caller did not name are ignored, as the spec
//    requires. A signature by the named key (same name and key ID) that does
//    not verify rejects the whole note.
//  - Malformed input is InvalidArgument; a well-formed note that fails a
//    cryptographic or semantic check is VerificationFailed (kDataLoss) with a
//    VerificationError naming the check ("note.signature", "checkpoint.origin").
//  - No OpenSSL type appears here: keys are held as raw bytes and EVP objects
//    live only inside note.cc, for the duration of one call.
//
// Thread-safety: every type is an immutable value after construction; const
// methods and the free functions may be called concurrently from any thread.
#ifndef VELLUM_MERKLE_NOTE_H_
#define VELLUM_MERKLE_NOTE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vellum/base/status.h"
#include "vellum/merkle/hasher.h"

namespace vellum::merkle {

// Signature type identifier byte of Ed25519 in C2SP signed-note.
inline constexpr std::uint8_t kNoteAlgEd25519 = 0x01;
inline constexpr size_t kEd25519PublicKeySize = 32;
inline constexpr size_t kEd25519SeedSize = 32;
inline constexpr size_t kEd25519SignatureSize = 64;
// Limits applied by ParseSignedNote/VerifyNote (the spec asks for at least 16
// signatures to be accepted).
inline constexpr size_t kMaxNoteSize = 1 << 20;
inline constexpr size_t kMaxNoteSignatures = 100;

// ---------------------------------------------------------------------------
// Checkpoint bodies (tlog-checkpoint).

struct Checkpoint {
  std::string origin;
  std::uint64_t size = 0;
  Hash root{};
  // Optional extension lines, without their trailing newline.
  std::vector<std::string> extensions;

  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// Returns "origin\n<size>\n<base64 root>\n" followed by each extension and a
// newline. Does not validate; ParseCheckpointBody(FormatCheckpointBody(c))
// returns c whenever c's origin and extensions are non-empty single lines.
std::string FormatCheckpointBody(const Checkpoint& checkpoint);

// Parses a checkpoint body (the note text, not the signed note). Strict: the
// origin is non-empty, the size is decimal without leading zeros ("0" alone is
// allowed) and fits in 64 bits, the root is canonical padded base64 of exactly
// 32 bytes, extension lines are non-empty, and the body ends with "\n".
// Returns InvalidArgument naming the offending line otherwise.
Result<Checkpoint> ParseCheckpointBody(std::string_view body);

// ---------------------------------------------------------------------------
// Keys.

// Returns the C2SP key ID of an Ed25519 public key under `name`.
std::uint32_t NoteKeyId(std::string_view name,
                        const std::array<std::uint8_t, kEd25519PublicKeySize>& public_key);

// Returns true iff `name` is a valid key name: non-empty valid UTF-8 with no
// '+', no Unicode space and no control character.
bool IsValidNoteKeyName(std::string_view name);

// An Ed25519 verifier key, written "name+hexkeyid+base64(0x01 || public key)".
class NoteVerifier {
 public:
  // Parses a verifier key string. Returns InvalidArgument if the name is
  // invalid (see IsValidNoteKeyName), the key ID is not 8 lowercase hex digits
  // or differs from the ID computed from the key, the base64 is malformed, the
  // algorithm byte is not 0x01 or the key is not 32 bytes.
  static Result<NoteVerifier> Parse(std::string_view vkey);

  const std::string& name() const { return name_; }
  std::uint32_t key_id() const { return key_id_; }
  const std::array<std::uint8_t, kEd25519PublicKeySize>& public_key() const { return public_key_; }

  // Returns the verifier key string; Parse(ToString()) round-trips.
  std::string ToString() const;

  // Returns true iff `signature` is a valid 64-byte Ed25519 signature of
  // `message` under this key. Any other length, or an internal OpenSSL
  // failure, yields false.
  bool Verify(std::string_view message, std::string_view signature) const;

 private:
  friend class NoteSigner;
  NoteVerifier(std::string name, const std::array<std::uint8_t, kEd25519PublicKeySize>& public_key);

  std::string name_;
  std::uint32_t key_id_ = 0;
  std::array<std::uint8_t, kEd25519PublicKeySize> public_key_{};
};

// An Ed25519 signing key with its name. The seed is wiped on destruction.
class NoteSigner {
 public:
  // Returns a signer with a fresh random key from OpenSSL's CSPRNG.
  // InvalidArgument if `name` is not a valid key name; Internal if OpenSSL
  // fails to generate a key.
  static Result<NoteSigner> Generate(std::string_view name);

  // Parses the Go golang.org/x/mod/sumdb/note private key form
  // "PRIVATE+KEY+name+hexkeyid+base64(0x01 || 32-byte seed)". Returns
  // InvalidArgument on a malformed string or a key ID that does not match the
  // key derived from the seed; Internal if OpenSSL rejects the seed.
  static Result<NoteSigner> ParseSkey(std::string_view skey);

  NoteSigner(const NoteSigner&) = default;
  NoteSigner& operator=(const NoteSigner&) = default;
  NoteSigner(NoteSigner&&) = default;
  NoteSigner& operator=(NoteSigner&&) = default;
  ~NoteSigner();

  // Returns the private key string accepted by ParseSkey. It is secret: the
  // caller stores it only in a file readable by its owner (mode 0600).
  std::string Skey() const;
  // Returns the verifier key string (NoteVerifier::Parse accepts it).
  std::string Vkey() const { return verifier_.ToString(); }
  const NoteVerifier& verifier() const { return verifier_; }
  const std::string& name() const { return verifier_.name(); }
  std::uint32_t key_id() const { return verifier_.key_id(); }

  // Signs `body` (the note text) and returns the whole signed note:
  // body + "\n" + "— <name> base64(key ID || signature)\n". InvalidArgument if
  // `body` is empty, does not end in "\n", is not valid UTF-8, contains a
  // control character other than "\n" or is too large for a note; Internal if
  // OpenSSL fails.
  Result<std::string> Sign(std::string_view body) const;

 private:
  NoteSigner(const std::array<std::uint8_t, kEd25519SeedSize>& seed, NoteVerifier verifier)
      : seed_(seed), verifier_(std::move(verifier)) {}
  static Result<NoteSigner> FromSeed(std::string_view name,
                                     const std::array<std::uint8_t, kEd25519SeedSize>& seed);

  std::array<std::uint8_t, kEd25519SeedSize> seed_{};
  NoteVerifier verifier_;
};

// ---------------------------------------------------------------------------
// Notes.

// One signature line, decoded but not verified.
struct NoteSignature {
  std::string name;
  std::uint32_t key_id = 0;
  std::string signature;  // the bytes after the key ID (64 for Ed25519)
};

struct SignedNote {
  std::string body;  // the note text, ending in "\n"; trusted only once verified
  std::vector<NoteSignature> signatures;
};

// Splits a signed note into its text and signature lines, checking syntax
// only: at most kMaxNoteSize bytes, valid UTF-8 without control characters
// other than "\n", text ending in "\n" followed by a blank line, then 1 to
// kMaxNoteSignatures lines "— <valid name> <base64 of at least 5 bytes>\n".
// Returns InvalidArgument with the reason otherwise.
Result<SignedNote> ParseSignedNote(std::string_view note);

// Verifies `note` against `verifier` and returns its text. Signatures by other
// keys (name or key ID differ) are ignored. Returns InvalidArgument if the
// note is malformed (see ParseSignedNote), and VerificationFailed with check
// "note.signature" (kDataLoss) if a signature by this key does not verify or
// there is no signature by this key; the evidence names the key.
Result<std::string> VerifyNote(std::string_view note, const NoteVerifier& verifier);

// VerifyNote, then ParseCheckpointBody, then requires the checkpoint origin
// to equal verifier.name(). Returns the errors of those two functions, and
// VerificationFailed with check "checkpoint.origin" on an origin mismatch.
Result<Checkpoint> VerifyCheckpoint(std::string_view note, const NoteVerifier& verifier);

}  // namespace vellum::merkle

#endif  // VELLUM_MERKLE_NOTE_H_
