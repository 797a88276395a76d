#include "core/cache_control.h"

#include "core/header_text.h"

#include <cctype>
#include <algorithm>
#include <limits>
#include <string_view>

namespace fanout {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// delta-seconds; quoted values are accepted (a common sender error). Too
// large saturates (RFC 9111 §1.2.2: 2^31 "or the greatest ... integer").
std::int64_t DeltaSeconds(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty()) return 0;
  std::int64_t n = 0;
  for (char c : v) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return 0;
    if (n > (std::int64_t{1} << 31)) return std::int64_t{1} << 31;
    n = n * 10 + (c - '0');
  }
  return std::min<std::int64_t>(n, std::int64_t{1} << 31);
}

// Splits a line into directives on commas outside quoted strings (RFC 9110
// §5.6.4: inside one, a backslash quotes the next character, '"' too).
std::vector<std::string_view> Directives(std::string_view line) {
  std::vector<std::string_view> out;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (quoted && i + 1 < line.size() && line[i] == '\\') {
      ++i;  // the quoted character, whatever it is
      continue;
    }
    if (i < line.size() && line[i] == '"') quoted = !quoted;
    if (i == line.size() || (line[i] == ',' && !quoted)) {
      auto d = TrimOws(line.substr(start, i - start));
      if (!d.empty()) out.push_back(d);
      start = i + 1;
    }
  }
  return out;
}

void SetOnce(std::optional<std::int64_t>& field, std::int64_t value) {
  if (!field) field = value;
}

}  // namespace

CacheControl CacheControl::Parse(const std::vector<std::string>& lines) {
  CacheControl cc;
  for (const std::string& line : lines) {
    for (std::string_view d : Directives(line)) {
      const auto eq = d.find('=');
      const std::string name = Lower(TrimOws(d.substr(0, eq)));
      const bool has_value = eq != std::string_view::npos;
      const std::string_view value = has_value ? TrimOws(d.substr(eq + 1)) : std::string_view();
      if (name == "no-store") cc.no_store = true;
      else if (name == "no-cache") cc.no_cache = true;
      else if (name == "private") cc.private_ = true;
      else if (name == "public") cc.public_ = true;
      else if (name == "must-revalidate") cc.must_revalidate = true;
      else if (name == "proxy-revalidate") cc.proxy_revalidate = true;
      else if (name == "only-if-cached") cc.only_if_cached = true;
      else if (name == "max-age") SetOnce(cc.max_age, DeltaSeconds(value));
      else if (name == "s-maxage") SetOnce(cc.s_maxage, DeltaSeconds(value));
      else if (name == "min-fresh") SetOnce(cc.min_fresh, DeltaSeconds(value));
      else if (name == "max-stale") {
        SetOnce(cc.max_stale, has_value ? DeltaSeconds(value)
                                        : std::numeric_limits<std::int64_t>::max());
      } else if (name == "stale-while-revalidate") {
        SetOnce(cc.stale_while_revalidate, DeltaSeconds(value));
      } else if (name == "stale-if-error") {
        SetOnce(cc.stale_if_error, DeltaSeconds(value));
      }
    }
  }
  return cc;
}

namespace {

// RFC 8941 §4.2: a cursor over a Structured Field value. Each Parse*
// returns false on a syntax error.
class SfParser {
 public:
  explicit SfParser(std::string_view text) : s_(text) {}

  // A bare item's kind and, for integers, its value.
  struct Item {
    enum Kind { kInteger, kDecimal, kString, kToken, kBytes, kBoolean, kInnerList } kind = kBoolean;
    std::int64_t integer = 0;
    bool boolean = true;
  };

  // sf-dictionary = dict-member *( OWS "," OWS dict-member ); calls
  // member(key, item) for each member in order.
  template <typename Member>
  bool ParseDictionary(Member member) {
    SkipSp();
    if (AtEnd()) return false;  // an empty value is ignored
    for (;;) {
      std::string key;
      if (!ParseKey(&key)) return false;
      Item item;
      if (Peek('=')) {
        ++i_;
        if (Peek('(')) {
          if (!ParseInnerList()) return false;
          item.kind = Item::kInnerList;
        } else if (!ParseBareItem(&item)) {
          return false;
        }
      }
      if (!ParseParameters()) return false;
      member(key, item);
      SkipOws();
      if (AtEnd()) return true;
      if (!Peek(',')) return false;
      ++i_;
      SkipOws();
      if (AtEnd()) return false;  // a trailing comma
    }
  }

 private:
  bool AtEnd() const { return i_ >= s_.size(); }
  bool Peek(char c) const { return !AtEnd() && s_[i_] == c; }
  void SkipSp() {
    while (Peek(' ')) ++i_;
  }
  void SkipOws() {
    while (Peek(' ') || Peek('\t')) ++i_;
  }
  static bool IsLcAlpha(char c) { return c >= 'a' && c <= 'z'; }
  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }

  bool ParseKey(std::string* key) {
    if (AtEnd() || !(IsLcAlpha(s_[i_]) || s_[i_] == '*')) return false;
    while (!AtEnd() && (IsLcAlpha(s_[i_]) || IsDigit(s_[i_]) || s_[i_] == '_' ||
                        s_[i_] == '-' || s_[i_] == '.' || s_[i_] == '*')) {
      key->push_back(s_[i_++]);
    }
    return true;
  }

  bool ParseParameters() {
    while (Peek(';')) {
      ++i_;
      SkipSp();
      std::string key;
      if (!ParseKey(&key)) return false;
      Item ignored;
      if (Peek('=')) {
        ++i_;
        if (!ParseBareItem(&ignored)) return false;
      }
    }
    return true;
  }

  bool ParseInnerList() {
    ++i_;  // '('
    for (;;) {
      SkipSp();
      if (Peek(')')) {
        ++i_;
        return ParseParameters();
      }
      Item ignored;
      if (!ParseBareItem(&ignored) || !ParseParameters()) return false;
      if (!Peek(' ') && !Peek(')')) return false;
    }
  }

  bool ParseBareItem(Item* item) {
    if (AtEnd()) return false;
    const char c = s_[i_];
    if (c == '-' || IsDigit(c)) return ParseNumber(item);
    if (c == '"') {
      item->kind = Item::kString;
      for (++i_; !AtEnd(); ++i_) {
        if (s_[i_] == '\\') {
          if (++i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\\')) return false;
        } else if (s_[i_] == '"') {
          ++i_;
          return true;
        } else if (s_[i_] < 0x20 || s_[i_] > 0x7e) {
          return false;
        }
      }
      return false;  // no closing quote
    }
    if (c == '?') {
      item->kind = Item::kBoolean;
      if (i_ + 1 >= s_.size() || (s_[i_ + 1] != '0' && s_[i_ + 1] != '1')) return false;
      item->boolean = s_[i_ + 1] == '1';
      i_ += 2;
      return true;
    }
    if (c == ':') {
      item->kind = Item::kBytes;
      for (++i_; !AtEnd() && s_[i_] != ':'; ++i_) {
        const char b = s_[i_];
        if (!(std::isalnum(static_cast<unsigned char>(b)) || b == '+' || b == '/' || b == '=')) {
          return false;
        }
      }
      if (AtEnd()) return false;
      ++i_;
      return true;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '*') {
      item->kind = Item::kToken;
      while (!AtEnd() && (IsTokenChar(s_[i_]) || s_[i_] == ':' || s_[i_] == '/')) ++i_;
      return true;
    }
    return false;
  }

  bool ParseNumber(Item* item) {
    bool negative = false;
    if (Peek('-')) {
      negative = true;
      ++i_;
    }
    std::size_t digits = 0, fraction = 0;
    bool decimal = false;
    std::int64_t value = 0;
    while (!AtEnd()) {
      const char c = s_[i_];
      if (IsDigit(c)) {
        if (decimal) ++fraction;
        else value = value * 10 + (c - '0');
        if (++digits > (decimal ? 16u : 15u)) return false;
      } else if (c == '.' && !decimal && digits > 0 && digits <= 12) {
        decimal = true;
      } else {
        break;
      }
      ++i_;
    }
    if (digits == 0 || (decimal && (fraction == 0 || fraction > 3))) return false;
    item->kind = decimal ? Item::kDecimal : Item::kInteger;
    item->integer = negative ? -value : value;
    return true;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

std::optional<CacheControl> CacheControl::ParseTargeted(const std::vector<std::string>& lines) {
  // Several lines are one value, joined with commas (RFC 8941 §3.2).
  std::string value;
  for (const std::string& line : lines) {
    if (!value.empty()) value += ", ";
    value += TrimOws(line);
  }
  CacheControl cc;
  using Item = SfParser::Item;
  auto seconds = [](const Item& item) -> std::optional<std::int64_t> {
    if (item.kind != Item::kInteger || item.integer < 0) return std::nullopt;
    return std::min<std::int64_t>(item.integer, std::int64_t{1} << 31);
  };
  auto set_seconds = [&](std::optional<std::int64_t>& field, const Item& item) {
    if (auto s = seconds(item)) SetOnce(field, *s);
  };
  const bool ok = SfParser(value).ParseDictionary([&](const std::string& name, const Item& item) {
    // A member without a value is true; only an explicit ?0 says false.
    const bool present = item.kind != Item::kBoolean || item.boolean;
    if (name == "no-store") cc.no_store |= present;
    else if (name == "no-cache") cc.no_cache |= present;
    else if (name == "private") cc.private_ |= present;
    else if (name == "public") cc.public_ |= present;
    else if (name == "must-revalidate") cc.must_revalidate |= present;
    else if (name == "proxy-revalidate") cc.proxy_revalidate |= present;
    else if (name == "max-age") set_seconds(cc.max_age, item);
    else if (name == "s-maxage") set_seconds(cc.s_maxage, item);
    else if (name == "stale-while-revalidate") set_seconds(cc.stale_while_revalidate, item);
    else if (name == "stale-if-error") set_seconds(cc.stale_if_error, item);
  });
  if (!ok) return std::nullopt;
  return cc;
}

}  // namespace fanout
