#include "classify/p2p_signatures.h"

#include "config/json_path.h"

#include <hs/hs_compile.h>

#include <array>
#include <cstdlib>
#include <map>
#include <stdexcept>

namespace fairgate {
namespace {

constexpr std::array<std::string_view, kP2pProtocolCount> kNames = {
    "none",
#define FAIRGATE_NAME(e, name, option, display) name,
    FAIRGATE_P2P_PROTOCOLS(FAIRGATE_NAME)
#undef FAIRGATE_NAME
};
constexpr std::array<std::string_view, kP2pProtocolCount> kOptions = {
    "none",
#define FAIRGATE_OPTION(e, name, option, display) option,
    FAIRGATE_P2P_PROTOCOLS(FAIRGATE_OPTION)
#undef FAIRGATE_OPTION
};
constexpr std::array<std::string_view, kP2pProtocolCount> kDisplay = {
    "none",
#define FAIRGATE_DISPLAY(e, name, option, display) display,
    FAIRGATE_P2P_PROTOCOLS(FAIRGATE_DISPLAY)
#undef FAIRGATE_DISPLAY
};

// A protocol's entry in one of the tables above; "none" for a value outside the enum.
std::string_view table_entry(const std::array<std::string_view, kP2pProtocolCount>& table, P2pProtocol protocol) {
  auto i = static_cast<std::size_t>(protocol);
  return i < kP2pProtocolCount ? table[i] : "none";
}

std::string protocol_list() {
  std::string list;
  for (std::size_t i = 1; i < kP2pProtocolCount; ++i) list += (i > 1 ? ", " : "") + std::string(kNames[i]);
  return list;
}

P2pProtocol parse_protocol(const JsonField& field) {
  std::string text = field.string();
  for (std::size_t i = 1; i < kP2pProtocolCount; ++i)
    if (text == kNames[i]) return static_cast<P2pProtocol>(i);
  field.fail("unknown protocol \"" + text + "\" (" + protocol_list() + ")");
}

P2pTransport parse_transport(const JsonField& field) {
  return field.one_of<P2pTransport>({{"tcp", P2pTransport::kTcp}, {"udp", P2pTransport::kUdp}},
                                    "must be \"tcp\" or \"udp\"");
}

P2pDirection parse_direction(const JsonField& field) {
  return field.one_of<P2pDirection>(
      {{"any", P2pDirection::kAny}, {"client", P2pDirection::kClient}, {"server", P2pDirection::kServer}},
      "must be \"any\", \"client\" (the flow's initiator) or \"server\"");
}

P2pConfirm parse_confirm(const JsonField& field) {
  return field.one_of<P2pConfirm>({{"none", P2pConfirm::kNone},
                                   {"other_direction", P2pConfirm::kOtherDirection},
                                   {"another_packet", P2pConfirm::kAnotherPacket}},
                                  "must be \"none\", \"other_direction\" or \"another_packet\"");
}

void parse_flags(const JsonField& field, P2pSignature& signature) {
  for (std::size_t i = 0; i < field.size(); ++i) {
    JsonField flag = field.at(i);
    std::string text = flag.string();
    bool* target = text == "anchored" ? &signature.anchored
                   : text == "caseless" ? &signature.caseless
                   : text == "dotall"   ? &signature.dotall
                                        : nullptr;
    if (target == nullptr) flag.fail("unknown flag \"" + text + "\" (anchored, caseless, dotall)");
    if (*target) flag.fail("\"" + text + "\" given twice");
    *target = true;
  }
}

P2pLengthCheck parse_length(const JsonField& field) {
  field.reject_unknown({"offset", "size", "order", "add", "compare"});
  P2pLengthCheck check;
  check.present = true;
  check.offset = static_cast<uint16_t>(field.at("offset").unsigned_in(0, 65535));
  JsonField size = field.at("size");
  uint64_t bytes = size.unsigned_in(1, 4);
  if (bytes == 3) size.fail("must be 1, 2 or 4 bytes");
  check.size = static_cast<uint8_t>(bytes);
  if (auto order = field.find("order")) {
    check.little_endian = order->one_of<bool>({{"little", true}, {"big", false}}, "must be \"little\" or \"big\"");
  } else if (check.size > 1) {
    field.at("order");  // required for a field of several bytes: fails naming it
  }
  if (auto add = field.find("add")) {
    if (!add->raw().is_number_integer()) add->fail("must be an integer between -65535 and 65535");
    auto value = add->raw().get<int64_t>();
    if (add->raw().is_number_unsigned() && add->raw().get<uint64_t>() > 65535) value = 65536;
    if (value < -65535 || value > 65535) add->fail(add->raw().dump() + " is out of range -65535..65535");
    check.add = static_cast<int32_t>(value);
  }
  if (auto compare = field.find("compare")) {
    check.equal = compare->one_of<bool>({{"equal", true}, {"at_most", false}},
                                        "must be \"equal\" (the message is the whole payload) or \"at_most\" (it fits in it)");
  }
  return check;
}

P2pSignature parse_signature(const JsonField& field) {
  field.reject_unknown({"name", "protocol", "transport", "direction", "pattern", "flags", "confirm",
                        "max_offset", "length", "comment"});
  P2pSignature signature;
  JsonField name = field.at("name");
  signature.name = name.string();
  if (signature.name.empty()) name.fail("must not be empty");
  for (char c : signature.name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      name.fail("\"" + signature.name + "\": only lower-case letters, digits, '-' and '_'");
  signature.protocol = parse_protocol(field.at("protocol"));
  signature.transport = parse_transport(field.at("transport"));
  if (auto f = field.find("direction")) signature.direction = parse_direction(*f);
  JsonField pattern = field.at("pattern");
  signature.pattern = pattern.string();
  if (signature.pattern.empty()) pattern.fail("must not be empty");
  // Hyperscan takes NUL-terminated expressions: a zero byte is written \x00.
  if (signature.pattern.find('\0') != std::string::npos) pattern.fail("contains a zero byte: write it \\x00");
  if (auto f = field.find("flags")) parse_flags(*f, signature);
  if (auto f = field.find("confirm")) signature.confirm = parse_confirm(*f);
  if (auto f = field.find("max_offset")) signature.max_offset = static_cast<uint32_t>(f->unsigned_in(1, 65535));
  if (auto f = field.find("length")) signature.length = parse_length(*f);
  JsonField comment = field.at("comment");
  signature.comment = comment.string();
  if (signature.comment.empty()) comment.fail("must say where the signature comes from");
  return signature;
}

// Hyperscan reads the signature's own pattern; "anchored" puts it at the payload start.
std::string expression(const P2pSignature& signature) {
  return signature.anchored ? "\\A(?:" + signature.pattern + ")" : signature.pattern;
}

}  // namespace

std::string_view p2p_protocol_name(P2pProtocol protocol) { return table_entry(kNames, protocol); }
std::string_view p2p_protocol_option(P2pProtocol protocol) { return table_entry(kOptions, protocol); }
std::string_view p2p_protocol_display(P2pProtocol protocol) { return table_entry(kDisplay, protocol); }

std::optional<P2pProtocol> p2p_protocol_from_name(std::string_view name) {
  for (std::size_t i = 1; i < kP2pProtocolCount; ++i)
    if (name == kNames[i] || name == kOptions[i]) return static_cast<P2pProtocol>(i);
  return std::nullopt;
}

P2pProtocolMask parse_p2p_protocols(std::string_view list) {
  P2pProtocolMask mask = 0;
  std::size_t at = 0;
  while (at < list.size()) {
    if (list[at] == ' ' || list[at] == ',' || list[at] == '\t') {
      ++at;
      continue;
    }
    std::size_t end = list.find_first_of(" ,\t", at);
    if (end == std::string_view::npos) end = list.size();
    std::string_view word = list.substr(at, end - at);
    at = end;
    std::string_view bare = word.substr(0, 2) == "--" ? word.substr(2) : word;
    if (bare == "ipp2p" || bare == "all") {
      mask |= kAllP2pProtocols;
    } else if (auto protocol = p2p_protocol_from_name(bare)) {
      mask |= p2p_bit(*protocol);
    } else {
      std::string known;
      for (std::size_t i = 1; i < kP2pProtocolCount; ++i) known += std::string(kOptions[i]) + " ";
      throw std::invalid_argument("unknown P2P protocol \"" + std::string(word) + "\" (" + known +
                                  "ipp2p, or the full names)");
    }
  }
  return mask;
}

std::string format_p2p_protocols(P2pProtocolMask mask) {
  std::string text;
  for (std::size_t i = 1; i < kP2pProtocolCount; ++i)
    if (mask & p2p_bit(static_cast<P2pProtocol>(i))) text += (text.empty() ? "" : " ") + std::string(kNames[i]);
  return text;
}

P2pSignatureSet parse_p2p_signatures(std::string_view json_text) {
  nlohmann::json document = parse_json_document(json_text, "signatures file");
  JsonField root(document, "");
  if (!document.is_object()) throw FieldError("signatures file", std::string("must be a JSON object, not ") + document.type_name());
  root.reject_unknown({"comment", "signatures"});
  JsonField list = root.at("signatures");
  if (list.size() == 0) list.fail("lists no signature");
  P2pSignatureSet set;
  std::map<std::string, std::size_t> names;
  for (std::size_t i = 0; i < list.size(); ++i) {
    JsonField entry = list.at(i);
    set.signatures.push_back(parse_signature(entry));
    const std::string& name = set.signatures.back().name;
    auto [it, inserted] = names.emplace(name, i);
    if (!inserted)
      entry.at("name").fail("\"" + name + "\" is the name of signatures[" + std::to_string(it->second) + "] too");
  }
  return set;
}

P2pSignatureSet load_p2p_signatures(const std::filesystem::path& path) {
  return parse_p2p_signatures(read_text_file(path, "signatures file"));
}

std::unique_ptr<P2pDatabase> P2pDatabase::compile(const P2pSignatureSet& set) {
  if (set.signatures.empty()) throw FieldError("signatures", "lists no signature");
  std::unique_ptr<P2pDatabase> db(new P2pDatabase());
  std::size_t count = set.signatures.size();
  std::vector<std::string> expressions(count);
  std::vector<const char*> pointers(count);
  std::vector<unsigned> flags(count), ids(count);
  std::vector<hs_expr_ext_t> ext(count);
  std::vector<const hs_expr_ext_t*> ext_pointers(count);
  auto refuse = [&](std::size_t index, const std::string& message) {
    const P2pSignature& s = set.signatures[index];
    throw FieldError("signatures[" + std::to_string(index) + "].pattern",
                     std::string(p2p_protocol_name(s.protocol)) + " signature \"" + s.name + "\" does not compile: " + message);
  };
  for (std::size_t i = 0; i < count; ++i) {
    const P2pSignature& s = set.signatures[i];
    if (s.anchored) {
      // The pattern must stand alone: wrapped in \A(?:...), "a)|(b" would compile, and match
      // anywhere.
      hs_expr_info_t* info = nullptr;
      hs_compile_error_t* error = nullptr;
      if (hs_expression_info(s.pattern.c_str(), 0, &info, &error) != HS_SUCCESS) {
        std::string message = error != nullptr && error->message != nullptr ? error->message : "unknown error";
        hs_free_compile_error(error);
        refuse(i, message);
      }
      std::free(info);  // allocated with Hyperscan's default allocator, malloc
    }
    expressions[i] = expression(s);
    pointers[i] = expressions[i].c_str();
    // One match per pattern is all the inspector needs; it also lets Hyperscan stop tracking a
    // pattern once it has matched.
    flags[i] = HS_FLAG_SINGLEMATCH;
    if (s.caseless) flags[i] |= HS_FLAG_CASELESS;
    if (s.dotall) flags[i] |= HS_FLAG_DOTALL;
    ids[i] = static_cast<unsigned>(i);
    ext[i] = hs_expr_ext_t{};
    if (s.max_offset != 0) {
      ext[i].flags = HS_EXT_FLAG_MAX_OFFSET;
      ext[i].max_offset = s.max_offset;
    }
    ext_pointers[i] = &ext[i];
    db->entries_.push_back({s.protocol, s.transport, s.direction, s.confirm, s.length});
    db->names_.push_back(s.name);
    db->protocols_ |= p2p_bit(s.protocol);
  }
  hs_compile_error_t* error = nullptr;
  hs_error_t status = hs_compile_ext_multi(pointers.data(), flags.data(), ids.data(), ext_pointers.data(),
                                           static_cast<unsigned>(count), HS_MODE_BLOCK, nullptr, &db->database_, &error);
  if (status != HS_SUCCESS) {
    std::string message = error != nullptr && error->message != nullptr ? error->message : "unknown error";
    int index = error != nullptr ? error->expression : -1;
    hs_free_compile_error(error);
    if (index < 0 || static_cast<std::size_t>(index) >= count)
      throw FieldError("signatures", "the set does not compile: " + message);
    refuse(static_cast<std::size_t>(index), message);
  }
  return db;
}

P2pDatabase::~P2pDatabase() { hs_free_database(database_); }

std::size_t P2pDatabase::bytes() const {
  std::size_t size = 0;
  return hs_database_size(database_, &size) == HS_SUCCESS ? size : 0;
}

bool P2pSignatureLoader::install(const std::function<P2pSignatureSet()>& parse, std::string& error) {
  try {
    std::shared_ptr<const P2pDatabase> next = P2pDatabase::compile(parse());
    current_ = std::move(next);
    ++generation_;
    return true;
  } catch (const FieldError& e) {
    error = e.what();
    return false;
  }
}

bool P2pSignatureLoader::reload(std::string_view json_text, std::string& error) {
  return install([json_text] { return parse_p2p_signatures(json_text); }, error);
}

bool P2pSignatureLoader::reload_file(const std::filesystem::path& path, std::string& error) {
  return install([&path] { return load_p2p_signatures(path); }, error);
}

}  // namespace fairgate
