#include "vellum/merkle/note.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <memory>
#include <utility>

#include "vellum/base/bytes.h"

namespace vellum::merkle {
namespace {

constexpr std::string_view kSignaturePrefix = "\xe2\x80\x94 ";  // em dash U+2014, space
constexpr std::string_view kSkeyPrefix = "PRIVATE+KEY+";

using PublicKey = std::array<std::uint8_t, kEd25519PublicKeySize>;
using Seed = std::array<std::uint8_t, kEd25519SeedSize>;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// Wipes a buffer that held key material when it goes out of scope.
class Wiper {
 public:
  Wiper(void* p, size_t n) : p_(p), n_(n) {}
  ~Wiper() { OPENSSL_cleanse(p_, n_); }
  Wiper(const Wiper&) = delete;
  Wiper& operator=(const Wiper&) = delete;

 private:
  void* p_;
  size_t n_;
};

// Decodes one UTF-8 code point at `s[*pos]`, advancing *pos. Returns -1 on an
// invalid, overlong or surrogate encoding.
std::int32_t NextCodePoint(std::string_view s, size_t* pos) {
  const auto b0 = static_cast<unsigned char>(s[*pos]);
  if (b0 < 0x80) {
    ++*pos;
    return b0;
  }
  size_t len;
  std::int32_t cp;
  std::int32_t min;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2, cp = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, cp = b0 & 0x0f, min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (s.size() - *pos < len) return -1;
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[*pos + i]);
    if ((b & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
  *pos += len;
  return cp;
}

// Unicode White_Space (what Go's unicode.IsSpace accepts).
bool IsUnicodeSpace(std::int32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0a:
    case 0x0b:
    case 0x0c:
    case 0x0d:
    case 0x20:
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200a;
  }
}

// Note text rule: valid UTF-8, no ASCII control character but "\n".
Status CheckNoteText(std::string_view text, std::string_view what) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t at = pos;
    const std::int32_t cp = NextCodePoint(text, &pos);
    if (cp < 0)
      return InvalidArgument(std::string(what) + ": invalid UTF-8 at offset " + std::to_string(at));
    if (cp < 0x20 && cp != '\n') {
      return InvalidArgument(std::string(what) + ": control character 0x" +
                             HexEncode(std::string_view(&text[at], 1)) + " at offset " +
                             std::to_string(at));
    }
  }
  return Status::Ok();
}

std::string KeyIdHex(std::uint32_t id) {
  const char be[4] = {static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                      static_cast<char>(id >> 8), static_cast<char>(id)};
  return HexEncode(std::string_view(be, 4));
}

std::uint32_t ReadKeyId(std::string_view four) {
  std::uint32_t id = 0;
  for (size_t i = 0; i < 4; ++i) id = (id << 8) | static_cast<unsigned char>(four[i]);
  return id;
}

Result<std::uint32_t> ParseKeyIdHex(std::string_view hex) {
  if (hex.size() != 8)
    return InvalidArgument("key ID must be 8 hex digits, got " + std::to_string(hex.size()));
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return InvalidArgument("key ID must be lowercase hex, got '" + std::string(hex) + "'");
    }
  }
  VELLUM_ASSIGN_OR_RETURN(std::string raw, HexDecode(hex));
  return ReadKeyId(raw);
}

// "name+hexid+base64" as shared by verifier and (after the prefix) private keys.
struct KeyParts {
  std::string_view name;
  std::string_view id_hex;
  std::string_view key_b64;
};

Result<KeyParts> SplitKey(std::string_view key, std::string_view what) {
  const size_t p1 = key.find('+');
  if (p1 == std::string_view::npos)
    return InvalidArgument(std::string(what) + ": missing '+' after key name");
  const size_t p2 = key.find('+', p1 + 1);
  if (p2 == std::string_view::npos)
    return InvalidArgument(std::string(what) + ": missing '+' after key ID");
  KeyParts parts{key.substr(0, p1), key.substr(p1 + 1, p2 - p1 - 1), key.substr(p2 + 1)};
  if (!IsValidNoteKeyName(parts.name)) {
    return InvalidArgument(std::string(what) + ": invalid key name '" + std::string(parts.name) +
                           "'");
  }
  return parts;
}

// Decodes base64(0x01 || 32 bytes) into `out`.
Status DecodeAlgKey(std::string_view b64, std::string_view what,
                    std::array<std::uint8_t, 32>* out) {
  auto raw = Base64Decode(b64);
  if (!raw.ok()) return raw.status().WithContext(what);
  Wiper wipe(raw->data(), raw->size());
  if (raw->empty() || static_cast<std::uint8_t>((*raw)[0]) != kNoteAlgEd25519) {
    return InvalidArgument(std::string(what) +
                           ": unsupported signature algorithm (want 0x01, Ed25519)");
  }
  if (raw->size() != 1 + out->size()) {
    return InvalidArgument(std::string(what) + ": Ed25519 key must be 32 bytes, got " +
                           std::to_string(raw->size() - 1));
  }
  std::copy(raw->begin() + 1, raw->end(), out->begin());
  return Status::Ok();
}

std::string EncodeAlgKey(const std::array<std::uint8_t, 32>& key) {
  std::string raw(1, static_cast<char>(kNoteAlgEd25519));
  raw.append(reinterpret_cast<const char*>(key.data()), key.size());
  std::string out = Base64Encode(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return out;
}

PkeyPtr PrivateKeyFromSeed(const Seed& seed) {
  return PkeyPtr(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
}

}  // namespace

// ---------------------------------------------------------------------------
// Checkpoints.

std::string FormatCheckpointBody(const Checkpoint& checkpoint) {
  std::string out = checkpoint.origin;
  out += '\n';
  out += std::to_string(checkpoint.size);
  out += '\n';
  out += Base64Encode(HashView(checkpoint.root));
  out += '\n';
  for (const std::string& ext : checkpoint.extensions) {
    out += ext;
    out += '\n';
  }
  return out;
}

Result<Checkpoint> ParseCheckpointBody(std::string_view body) {
  if (body.empty() || body.back() != '\n')
    return InvalidArgument("checkpoint: body does not end in a newline");
  VELLUM_RETURN_IF_ERROR(CheckNoteText(body, "checkpoint"));
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < body.size();) {
    const size_t nl = body.find('\n', start);  // found: the body ends in '\n'
    lines.push_back(body.substr(start, nl - start));
    start = nl + 1;
  }
  if (lines.size() < 3) {
    return InvalidArgument("checkpoint: want origin, size and root lines, got " +
                           std::to_string(lines.size()) + " line(s)");
  }
  Checkpoint c;
  if (lines[0].empty()) return InvalidArgument("checkpoint: line 1 (origin) is empty");
  c.origin = std::string(lines[0]);

  const std::string_view size = lines[1];
  if (size.empty()) return InvalidArgument("checkpoint: line 2 (size) is empty");
  if (size.size() > 1 && size[0] == '0') {
    return InvalidArgument("checkpoint: line 2 (size) '" + std::string(size) +
                           "' has a leading zero");
  }
  for (char ch : size) {
    if (ch < '0' || ch > '9') {
      return InvalidArgument("checkpoint: line 2 (size) '" + std::string(size) +
                             "' is not a decimal number");
    }
  }
  const auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), c.size);
  if (ec != std::errc() || end != size.data() + size.size()) {
    return InvalidArgument("checkpoint: line 2 (size) '" + std::string(size) +
                           "' does not fit in 64 bits");
  }

  auto root = Base64Decode(lines[2]);
  if (!root.ok()) return root.status().WithContext("checkpoint: line 3 (root hash)");
  if (root->size() != kHashSize) {
    return InvalidArgument("checkpoint: line 3 (root hash) must decode to 32 bytes, got " +
                           std::to_string(root->size()));
  }
  VELLUM_ASSIGN_OR_RETURN(c.root, HashFromBytes(*root));

  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty())
      return InvalidArgument("checkpoint: line " + std::to_string(i + 1) + " (extension) is empty");
    c.extensions.emplace_back(lines[i]);
  }
  return c;
}

// ---------------------------------------------------------------------------
// Keys.

std::uint32_t NoteKeyId(std::string_view name,
                        const std::array<std::uint8_t, kEd25519PublicKeySize>& public_key) {
  Sha256 h;
  h.Update(name);
  const char sep[2] = {'\n', static_cast<char>(kNoteAlgEd25519)};
  h.Update(std::string_view(sep, 2));
  h.Update(std::string_view(reinterpret_cast<const char*>(public_key.data()), public_key.size()));
  const Hash digest = h.Finish();
  return ReadKeyId(HashView(digest).substr(0, 4));
}

bool IsValidNoteKeyName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t pos = 0; pos < name.size();) {
    const std::int32_t cp = NextCodePoint(name, &pos);
    if (cp < 0 || cp == '+' || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || IsUnicodeSpace(cp))
      return false;
  }
  return true;
}

NoteVerifier::NoteVerifier(std::string name,
                           const std::array<std::uint8_t, kEd25519PublicKeySize>& public_key)
    : name_(std::move(name)), key_id_(NoteKeyId(name_, public_key)), public_key_(public_key) {}

Result<NoteVerifier> NoteVerifier::Parse(std::string_view vkey) {
  VELLUM_ASSIGN_OR_RETURN(KeyParts parts, SplitKey(vkey, "verifier key"));
  auto id = ParseKeyIdHex(parts.id_hex);
  if (!id.ok()) return id.status().WithContext("verifier key");
  PublicKey public_key;
  VELLUM_RETURN_IF_ERROR(DecodeAlgKey(parts.key_b64, "verifier key", &public_key));
  NoteVerifier verifier(std::string(parts.name), public_key);
  if (verifier.key_id() != *id) {
    return InvalidArgument("verifier key: key ID " + std::string(parts.id_hex) +
                           " does not match the key (computed " + KeyIdHex(verifier.key_id()) +
                           ")");
  }
  return verifier;
}

std::string NoteVerifier::ToString() const {
  return name_ + "+" + KeyIdHex(key_id_) + "+" + EncodeAlgKey(public_key_);
}

bool NoteVerifier::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != kEd25519SignatureSize) return false;
  PkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key_.data(),
                                           public_key_.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (pkey == nullptr || ctx == nullptr) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

NoteSigner::~NoteSigner() { OPENSSL_cleanse(seed_.data(), seed_.size()); }

Result<NoteSigner> NoteSigner::FromSeed(std::string_view name, const Seed& seed) {
  if (!IsValidNoteKeyName(name))
    return InvalidArgument("signer: invalid key name '" + std::string(name) + "'");
  PkeyPtr pkey = PrivateKeyFromSeed(seed);
  if (pkey == nullptr) return Internal("signer: OpenSSL rejected the Ed25519 seed");
  PublicKey public_key;
  size_t len = public_key.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(), public_key.data(), &len) != 1 ||
      len != public_key.size()) {
    return Internal("signer: cannot derive the Ed25519 public key");
  }
  return NoteSigner(seed, NoteVerifier(std::string(name), public_key));
}

Result<NoteSigner> NoteSigner::Generate(std::string_view name) {
  Seed seed;
  Wiper wipe(seed.data(), seed.size());
  if (RAND_priv_bytes(seed.data(), static_cast<int>(seed.size())) != 1) {
    return Internal("signer: OpenSSL random generator failed");
  }
  return FromSeed(name, seed);
}

Result<NoteSigner> NoteSigner::ParseSkey(std::string_view skey) {
  if (!skey.starts_with(kSkeyPrefix))
    return InvalidArgument("private key: missing 'PRIVATE+KEY+' prefix");
  VELLUM_ASSIGN_OR_RETURN(KeyParts parts, SplitKey(skey.substr(kSkeyPrefix.size()), "private key"));
  auto id = ParseKeyIdHex(parts.id_hex);
  if (!id.ok()) return id.status().WithContext("private key");
  Seed seed;
  Wiper wipe(seed.data(), seed.size());
  VELLUM_RETURN_IF_ERROR(DecodeAlgKey(parts.key_b64, "private key", &seed));
  VELLUM_ASSIGN_OR_RETURN(NoteSigner signer, FromSeed(parts.name, seed));
  if (signer.key_id() != *id) {
    return InvalidArgument("private key: key ID " + std::string(parts.id_hex) +
                           " does not match the key (computed " + KeyIdHex(signer.key_id()) + ")");
  }
  return signer;
}

std::string NoteSigner::Skey() const {
  return std::string(kSkeyPrefix) + name() + "+" + KeyIdHex(key_id()) + "+" + EncodeAlgKey(seed_);
}

Result<std::string> NoteSigner::Sign(std::string_view body) const {
  if (body.empty() || body.back() != '\n')
    return InvalidArgument("sign: note text does not end in a newline");
  VELLUM_RETURN_IF_ERROR(CheckNoteText(body, "sign"));

  PkeyPtr pkey = PrivateKeyFromSeed(seed_);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (pkey == nullptr || ctx == nullptr) return Internal("sign: OpenSSL allocation failed");
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    return Internal("sign: EVP_DigestSignInit failed");
  }
  std::string sig(4 + kEd25519SignatureSize, '\0');
  const std::uint32_t id = key_id();
  for (int i = 0; i < 4; ++i) sig[i] = static_cast<char>(id >> (24 - 8 * i));
  size_t sig_len = kEd25519SignatureSize;
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data() + 4), &sig_len,
                     reinterpret_cast<const unsigned char*>(body.data()), body.size()) != 1 ||
      sig_len != kEd25519SignatureSize) {
    return Internal("sign: EVP_DigestSign failed");
  }

  std::string note;
  note.append(body);
  note += '\n';
  note.append(kSignaturePrefix);
  note.append(name());
  note += ' ';
  note.append(Base64Encode(sig));
  note += '\n';
  if (note.size() > kMaxNoteSize) {
    return InvalidArgument("sign: signed note would exceed " + std::to_string(kMaxNoteSize) +
                           " bytes");
  }
  return note;
}

// ---------------------------------------------------------------------------
// Notes.

Result<SignedNote> ParseSignedNote(std::string_view note) {
  if (note.size() > kMaxNoteSize) {
    return InvalidArgument("note: " + std::to_string(note.size()) + " bytes exceeds the limit of " +
                           std::to_string(kMaxNoteSize));
  }
  VELLUM_RETURN_IF_ERROR(CheckNoteText(note, "note"));
  // The text ends at the last empty line: signature lines are never empty.
  const size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos)
    return InvalidArgument("note: no blank line before the signatures");
  std::string_view sigs = note.substr(split + 2);
  if (sigs.empty()) return InvalidArgument("note: no signature lines after the blank line");
  if (sigs.back() != '\n')
    return InvalidArgument("note: last signature line does not end in a newline");

  SignedNote out;
  out.body = std::string(note.substr(0, split + 1));
  size_t line_no = 0;
  while (!sigs.empty()) {
    ++line_no;
    const std::string where = "note: signature line " + std::to_string(line_no);
    if (line_no > kMaxNoteSignatures) {
      return InvalidArgument("note: more than " + std::to_string(kMaxNoteSignatures) +
                             " signature lines");
    }
    const size_t nl = sigs.find('\n');
    std::string_view line = sigs.substr(0, nl);
    sigs.remove_prefix(nl + 1);
    if (!line.starts_with(kSignaturePrefix))
      return InvalidArgument(where + " does not start with \"— \"");
    line.remove_prefix(kSignaturePrefix.size());
    const size_t space = line.find(' ');
    if (space == std::string_view::npos)
      return InvalidArgument(where + " has no space after the key name");
    const std::string_view name = line.substr(0, space);
    if (!IsValidNoteKeyName(name))
      return InvalidArgument(where + ": invalid key name '" + std::string(name) + "'");
    auto raw = Base64Decode(line.substr(space + 1));
    if (!raw.ok()) return raw.status().WithContext(where);
    if (raw->size() < 5) {
      return InvalidArgument(where + ": signature has " + std::to_string(raw->size()) +
                             " bytes, want at least 5");
    }
    out.signatures.push_back(NoteSignature{std::string(name), ReadKeyId(*raw), raw->substr(4)});
  }
  return out;
}

Result<std::string> VerifyNote(std::string_view note, const NoteVerifier& verifier) {
  VELLUM_ASSIGN_OR_RETURN(SignedNote parsed, ParseSignedNote(note));
  const std::string key = verifier.name() + "+" + KeyIdHex(verifier.key_id());
  bool verified = false;
  for (const NoteSignature& sig : parsed.signatures) {
    if (sig.name != verifier.name() || sig.key_id != verifier.key_id()) continue;  // another key
    if (!verifier.Verify(parsed.body, sig.signature)) {
      return VerificationFailed({.check = "note.signature",
                                 .expected = "valid Ed25519 signature by " + key,
                                 .computed = "signature by " + key + " does not verify"});
    }
    verified = true;
  }
  if (!verified) {
    return VerificationFailed(
        {.check = "note.signature",
         .expected = "signature by " + key,
         .computed = "none among " + std::to_string(parsed.signatures.size()) + " signature(s)"});
  }
  return std::move(parsed.body);
}

Result<Checkpoint> VerifyCheckpoint(std::string_view note, const NoteVerifier& verifier) {
  VELLUM_ASSIGN_OR_RETURN(std::string body, VerifyNote(note, verifier));
  VELLUM_ASSIGN_OR_RETURN(Checkpoint checkpoint, ParseCheckpointBody(body));
  if (checkpoint.origin != verifier.name()) {
    return VerificationFailed({.check = "checkpoint.origin",
                               .expected = verifier.name(),
                               .computed = checkpoint.origin,
                               .size = checkpoint.size});
  }
  return checkpoint;
}

}  // namespace vellum::merkle
