#include "core/digest_field.h"

#include <array>
#include <cstdint>

#include "core/header_text.h"

namespace fanout {
namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// RFC 8941 §3.1.2 key: lcalpha or "*", then lcalpha, digits, "_-.*".
bool IsKey(std::string_view key) {
  if (key.empty() || !((key[0] >= 'a' && key[0] <= 'z') || key[0] == '*')) return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                    c == '.' || c == '*';
    if (!ok) return false;
  }
  return true;
}

std::optional<DigestAlgorithm> AlgorithmOf(std::string_view key) {
  if (key == "sha-256") return DigestAlgorithm::kSha256;
  if (key == "sha-512") return DigestAlgorithm::kSha512;
  return std::nullopt;
}

std::size_t LengthOf(DigestAlgorithm algorithm) {
  return algorithm == DigestAlgorithm::kSha256 ? 32 : 64;
}

}  // namespace

std::string AnnouncedDigest::algorithm_name() const {
  return algorithm == DigestAlgorithm::kSha256 ? "sha-256" : "sha-512";
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::array<int, 4> v{};
    int padding = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=') {
        // Only at the end of the last quantum, and never in its first two.
        if (i + 4 != text.size() || j < 2) return std::nullopt;
        ++padding;
        v[j] = 0;
        continue;
      }
      if (padding > 0) return std::nullopt;
      const std::size_t at = kBase64Alphabet.find(c);
      if (at == std::string_view::npos) return std::nullopt;
      v[j] = static_cast<int>(at);
    }
    const std::uint32_t n = (static_cast<std::uint32_t>(v[0]) << 18) |
                            (static_cast<std::uint32_t>(v[1]) << 12) |
                            (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    if (padding < 2) out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (padding < 1) out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}

std::string EncodeBase64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t left = bytes.size() - i;
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (left > 1) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (left > 2) n |= static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kBase64Alphabet[(n >> 18) & 63]);
    out.push_back(kBase64Alphabet[(n >> 12) & 63]);
    out.push_back(left > 1 ? kBase64Alphabet[(n >> 6) & 63] : '=');
    out.push_back(left > 2 ? kBase64Alphabet[n & 63] : '=');
  }
  return out;
}

std::vector<AnnouncedDigest> ParseDigestField(std::string_view field, std::string_view value) {
  std::vector<AnnouncedDigest> found;
  std::string_view rest = value;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view member = TrimOws(rest.substr(0, comma));
    const std::size_t eq = member.find('=');
    if (eq == std::string_view::npos) return {};  // a bare key is a boolean, not a digest
    const std::string_view key = member.substr(0, eq);
    std::string_view item = member.substr(eq + 1);
    if (!IsKey(key)) return {};
    // Parameters (";name=value") follow the item: such a member is skipped.
    const std::size_t semicolon = item.find(';');
    const bool has_parameters = semicolon != std::string_view::npos;
    if (has_parameters) item = item.substr(0, semicolon);
    if (item.size() < 2 || item.front() != ':' || item.back() != ':') return {};
    const std::optional<std::string> bytes = DecodeBase64(item.substr(1, item.size() - 2));
    if (!bytes) return {};
    const std::optional<DigestAlgorithm> algorithm = AlgorithmOf(key);
    if (algorithm && !has_parameters && bytes->size() == LengthOf(*algorithm)) {
      found.push_back(AnnouncedDigest{std::string(field), *algorithm, *bytes});
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
    if (TrimOws(rest).empty()) return {};  // a trailing comma
  }
  return found;
}

std::optional<AnnouncedDigest> ChooseDigest(const HeaderList& headers) {
  std::optional<AnnouncedDigest> best;
  auto better = [](const AnnouncedDigest& a, const std::optional<AnnouncedDigest>& b) {
    if (!b) return true;
    return a.algorithm == DigestAlgorithm::kSha512 && b->algorithm == DigestAlgorithm::kSha256;
  };
  for (const char* field : {"Repr-Digest", "Content-Digest"}) {
    std::string joined;
    for (const auto& [name, value] : headers) {
      if (!EqualsIgnoreCase(name, field)) continue;
      if (!joined.empty()) joined += ", ";
      joined += value;
    }
    if (joined.empty()) continue;
    for (const AnnouncedDigest& d : ParseDigestField(field, joined)) {
      if (better(d, best)) best = d;
    }
  }
  return best;
}

}  // namespace fanout
