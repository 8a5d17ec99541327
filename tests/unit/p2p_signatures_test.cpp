#include "classify/p2p_inspector.h"
#include "classify/p2p_signatures.h"
#include "config/json_path.h"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace fairgate {
namespace {

const std::string kShippedSignatures = std::string(FAIRGATE_SOURCE_DIR) + "/conf/p2p_signatures.json";

// One good signature, with `field` replaced by `value` (raw JSON) or removed when value is empty.
std::string with_field(const std::string& field, const std::string& value) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"name", R"("bt-handshake")"},
      {"protocol", R"("bittorrent")"},
      {"transport", R"("tcp")"},
      {"direction", R"("any")"},
      {"pattern", R"("\\x13BitTorrent protocol")"},
      {"flags", R"(["anchored"])"},
      {"comment", R"("BEP 3")"},
  };
  bool replaced = false;
  std::string object = "{";
  for (auto& [name, json] : fields) {
    if (name == field) {
      replaced = true;
      if (value.empty()) continue;
      json = value;
    }
    object += (object.size() > 1 ? ", " : "") + ("\"" + name + "\": ") + json;
  }
  if (!replaced && !value.empty()) object += ", \"" + field + "\": " + value;
  return R"({"signatures": [)" + object + "}]}";
}

std::string error_of(const std::string& text) {
  try {
    parse_p2p_signatures(text);
  } catch (const FieldError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(P2pSignatures, ParsesEveryField) {
  auto set = parse_p2p_signatures(R"({"comment": "c", "signatures": [
    {"name": "edk-hello", "protocol": "edonkey", "transport": "tcp", "direction": "client",
     "pattern": "\\xe3.{4}\\x01", "flags": ["anchored", "dotall", "caseless"], "confirm": "other_direction",
     "max_offset": 64, "length": {"offset": 1, "size": 4, "order": "little", "add": 5, "compare": "at_most"},
     "comment": "eMule"},
    {"name": "dht", "protocol": "bittorrent", "transport": "udp", "pattern": "d1:ad2:id20:", "comment": "BEP 5"}]})");
  ASSERT_EQ(set.signatures.size(), 2u);
  const P2pSignature& s = set.signatures[0];
  EXPECT_EQ(s.name, "edk-hello");
  EXPECT_EQ(s.protocol, P2pProtocol::kEdonkey);
  EXPECT_EQ(s.transport, P2pTransport::kTcp);
  EXPECT_EQ(s.direction, P2pDirection::kClient);
  EXPECT_EQ(s.pattern, "\\xe3.{4}\\x01");
  EXPECT_TRUE(s.anchored && s.dotall && s.caseless);
  EXPECT_EQ(s.confirm, P2pConfirm::kOtherDirection);
  EXPECT_EQ(s.max_offset, 64u);
  EXPECT_TRUE(s.length.present);
  EXPECT_EQ(s.length.offset, 1);
  EXPECT_EQ(s.length.size, 4);
  EXPECT_TRUE(s.length.little_endian);
  EXPECT_EQ(s.length.add, 5);
  EXPECT_FALSE(s.length.equal);
  // Defaults.
  const P2pSignature& d = set.signatures[1];
  EXPECT_EQ(d.direction, P2pDirection::kAny);
  EXPECT_EQ(d.confirm, P2pConfirm::kNone);
  EXPECT_FALSE(d.anchored || d.dotall || d.caseless);
  EXPECT_EQ(d.max_offset, 0u);
  EXPECT_FALSE(d.length.present);
}

TEST(P2pSignatures, BadInputsNameTheFieldAndTheReason) {
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"{", "signatures file: not valid JSON"},
      {"[]", "signatures file: must be a JSON object, not array"},
      {"{}", "signatures: required"},
      {R"({"signatures": []})", "signatures: lists no signature"},
      {R"({"signatures": {}})", "signatures: must be an array, not object"},
      {R"({"signatures": [], "version": 2})", "version: unknown field"},
      {R"({"signatures": [7]})", "signatures[0]: must be an object, not number"},
      {with_field("transport", R"("sctp")"), R"(signatures[0].transport: must be "tcp" or "udp")"},
      {with_field("transport", "6"), R"(signatures[0].transport: must be "tcp" or "udp")"},
      {with_field("transport", ""), "signatures[0].transport: required"},
      {with_field("protocol", R"("napster")"), R"(signatures[0].protocol: unknown protocol "napster" (bittorrent, edonkey)"},
      {with_field("protocol", R"("bit")"), R"(signatures[0].protocol: unknown protocol "bit")"},
      {with_field("direction", R"("inbound")"), R"(signatures[0].direction: must be "any", "client")"},
      {with_field("pattern", R"("")"), "signatures[0].pattern: must not be empty"},
      {with_field("pattern", R"("a\u0000b")"), R"(signatures[0].pattern: contains a zero byte: write it \x00)"},
      {with_field("pattern", ""), "signatures[0].pattern: required"},
      {with_field("flags", R"(["anchored", "greedy"])"), R"(signatures[0].flags[1]: unknown flag "greedy")"},
      {with_field("flags", R"(["dotall", "dotall"])"), R"(signatures[0].flags[1]: "dotall" given twice)"},
      {with_field("flags", R"("anchored")"), "signatures[0].flags: must be an array, not string"},
      {with_field("confirm", R"("both")"), R"(signatures[0].confirm: must be "none", "other_direction" or "another_packet")"},
      {with_field("max_offset", "0"), "signatures[0].max_offset: 0 is out of range 1..65535"},
      {with_field("max_offset", "-4"), "signatures[0].max_offset: must be an integer between 1 and 65535"},
      {with_field("length", R"({"offset": 1, "size": 3, "order": "little"})"), "signatures[0].length.size: must be 1, 2 or 4 bytes"},
      {with_field("length", R"({"offset": 1, "size": 8, "order": "little"})"), "signatures[0].length.size: 8 is out of range 1..4"},
      {with_field("length", R"({"offset": 1, "size": 2})"), "signatures[0].length.order: required"},
      {with_field("length", R"({"offset": 1, "size": 2, "order": "middle"})"), R"(signatures[0].length.order: must be "little" or "big")"},
      {with_field("length", R"({"size": 2, "order": "big"})"), "signatures[0].length.offset: required"},
      {with_field("length", R"({"offset": 0, "size": 1, "add": 70000})"), "signatures[0].length.add: 70000 is out of range -65535..65535"},
      {with_field("length", R"({"offset": 0, "size": 1, "add": 1.5})"), "signatures[0].length.add: must be an integer"},
      {with_field("length", R"({"offset": 0, "size": 1, "compare": "less"})"), R"(signatures[0].length.compare: must be "equal")"},
      {with_field("length", R"({"offset": 0, "size": 1, "bits": 8})"), "signatures[0].length.bits: unknown field"},
      {with_field("comment", R"("")"), "signatures[0].comment: must say where the signature comes from"},
      {with_field("comment", ""), "signatures[0].comment: required"},
      {with_field("name", R"("BT handshake")"), R"(signatures[0].name: "BT handshake": only lower-case letters)"},
      {with_field("name", ""), "signatures[0].name: required"},
      {with_field("priority", "1"), "signatures[0].priority: unknown field"},
  };
  for (const auto& c : cases) {
    std::string error = error_of(c.text);
    EXPECT_EQ(error.rfind(c.error, 0), 0u) << "input: " << c.text << "\n  error: " << error << "\n  expected: " << c.error;
  }
}

TEST(P2pSignatures, ErrorsNameTheIndexOfTheBadEntry) {
  std::string good = R"({"name": "a", "protocol": "gnutella", "transport": "tcp", "pattern": "GNUTELLA", "comment": "c"})";
  std::string bad = R"({"name": "b", "protocol": "gnutella", "transport": "icmp", "pattern": "GND", "comment": "c"})";
  EXPECT_EQ(error_of(R"({"signatures": [)" + good + "," + good + "," + bad + "]}").rfind("signatures[1].name: \"a\" is the name of signatures[0] too", 0), 0u);
  std::string second = R"({"name": "c", "protocol": "gnutella", "transport": "tcp", "pattern": "GNUTELLA", "comment": "c"})";
  EXPECT_EQ(error_of(R"({"signatures": [)" + good + "," + second + "," + bad + "]}"),
            R"(signatures[2].transport: must be "tcp" or "udp")");
}

TEST(P2pSignatures, ProtocolNamesAndIpp2pOptions) {
  EXPECT_EQ(p2p_protocol_name(P2pProtocol::kEdonkey), "edonkey");
  EXPECT_EQ(p2p_protocol_option(P2pProtocol::kEdonkey), "edk");
  EXPECT_EQ(p2p_protocol_display(P2pProtocol::kBitTorrent), "BitTorrent");
  EXPECT_EQ(p2p_protocol_name(P2pProtocol::kNone), "none");
  EXPECT_EQ(p2p_protocol_from_name("kazaa"), P2pProtocol::kFastTrack);
  EXPECT_EQ(p2p_protocol_from_name("fasttrack"), P2pProtocol::kFastTrack);
  EXPECT_EQ(p2p_protocol_from_name("none"), std::nullopt);

  // FairNAT's IPP2P_OPTIONS are IPP2P's command-line switches.
  EXPECT_EQ(parse_p2p_protocols("--edk --bit"), p2p_bit(P2pProtocol::kEdonkey) | p2p_bit(P2pProtocol::kBitTorrent));
  EXPECT_EQ(parse_p2p_protocols("gnu,dc  apple,\tsoul"),
            p2p_bit(P2pProtocol::kGnutella) | p2p_bit(P2pProtocol::kDirectConnect) | p2p_bit(P2pProtocol::kAppleJuice) |
                p2p_bit(P2pProtocol::kSoulSeek));
  EXPECT_EQ(parse_p2p_protocols("--ipp2p"), kAllP2pProtocols);
  EXPECT_EQ(parse_p2p_protocols("all"), kAllP2pProtocols);
  EXPECT_EQ(parse_p2p_protocols(""), 0);
  EXPECT_EQ(kAllP2pProtocols & p2p_bit(P2pProtocol::kNone), 0);
  try {
    parse_p2p_protocols("--bit --napster");
    FAIL() << "an unknown protocol was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("unknown P2P protocol \"--napster\"", 0), 0u) << e.what();
  }
  EXPECT_EQ(format_p2p_protocols(p2p_bit(P2pProtocol::kGnutella) | p2p_bit(P2pProtocol::kBitTorrent)), "bittorrent gnutella");
}

TEST(P2pSignatures, AnInvalidPatternIsReportedWithItsProtocolAndHyperscansMessage) {
  auto set = parse_p2p_signatures(R"({"signatures": [
    {"name": "ok", "protocol": "bittorrent", "transport": "tcp", "pattern": "\\x13BitTorrent", "comment": "c"},
    {"name": "broken", "protocol": "gnutella", "transport": "udp", "pattern": "GND(", "comment": "c"}]})");
  try {
    P2pDatabase::compile(set);
    FAIL() << "an invalid pattern compiled";
  } catch (const FieldError& e) {
    std::string message = e.what();
    EXPECT_EQ(message.rfind("signatures[1].pattern: gnutella signature \"broken\" does not compile: ", 0), 0u) << message;
    EXPECT_NE(message.find("parenthesis"), std::string::npos) << "Hyperscan's own message: " << message;
  }
}

TEST(P2pSignatures, AnAnchoredPatternMustStandAlone) {
  // Wrapped as \A(?:a)|(b) it would compile, and "b" would match anywhere.
  auto set = parse_p2p_signatures(R"({"signatures": [
    {"name": "escape", "protocol": "ares", "transport": "tcp", "pattern": "a)|(b", "flags": ["anchored"], "comment": "c"}]})");
  try {
    P2pDatabase::compile(set);
    FAIL() << "an unbalanced anchored pattern compiled";
  } catch (const FieldError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("signatures[0].pattern: ares signature \"escape\" does not compile: ", 0), 0u)
        << e.what();
  }
}

TEST(P2pSignatures, AReloadThatFailsKeepsTheRunningDatabase) {
  const std::string good = R"({"signatures": [
    {"name": "lsd", "protocol": "bittorrent", "transport": "udp", "pattern": "BT-SEARCH ", "flags": ["anchored"], "comment": "BEP 14"}]})";
  const std::string bad_pattern = R"({"signatures": [
    {"name": "lsd", "protocol": "bittorrent", "transport": "udp", "pattern": "BT-SEARCH [", "comment": "BEP 14"}]})";
  const std::string bad_field = R"({"signatures": [
    {"name": "lsd", "protocol": "bittorrent", "transport": "udp", "pattern": "x", "comment": "c", "flags": ["fast"]}]})";

  P2pSignatureLoader loader;
  std::string error;
  EXPECT_EQ(loader.current(), nullptr);
  ASSERT_TRUE(loader.reload(good, error)) << error;
  auto running = loader.current();
  ASSERT_NE(running, nullptr);
  EXPECT_EQ(loader.generation(), 1u);

  EXPECT_FALSE(loader.reload(bad_pattern, error));
  EXPECT_EQ(error.rfind("signatures[0].pattern: bittorrent signature \"lsd\" does not compile: ", 0), 0u) << error;
  EXPECT_EQ(loader.current(), running);
  EXPECT_EQ(loader.generation(), 1u);

  EXPECT_FALSE(loader.reload(bad_field, error));
  EXPECT_EQ(error, R"(signatures[0].flags[0]: unknown flag "fast" (anchored, caseless, dotall))");
  EXPECT_EQ(loader.current(), running);

  EXPECT_FALSE(loader.reload_file("/nonexistent/p2p_signatures.json", error));
  EXPECT_EQ(error, "signatures file: cannot read /nonexistent/p2p_signatures.json");
  EXPECT_EQ(loader.current(), running);

  // The database that stayed still recognises what it did.
  P2pInspector inspector(*loader.current(), {});
  P2pFlowState state;
  std::string lsd = "BT-SEARCH * HTTP/1.1\r\n";
  EXPECT_EQ(inspector.inspect(state, reinterpret_cast<const uint8_t*>(lsd.data()), static_cast<uint32_t>(lsd.size()),
                              P2pTransport::kUdp, true),
            P2pProtocol::kBitTorrent);

  ASSERT_TRUE(loader.reload_file(kShippedSignatures, error)) << error;
  EXPECT_NE(loader.current(), running);
  EXPECT_EQ(loader.generation(), 2u);
}

TEST(P2pSignatures, TheShippedSetCompilesAndCoversEveryProtocol) {
  P2pSignatureSet set = load_p2p_signatures(kShippedSignatures);
  auto database = P2pDatabase::compile(set);
  EXPECT_EQ(database->size(), set.signatures.size());
  EXPECT_GT(database->bytes(), 0u);
  EXPECT_EQ(database->protocols(), kAllP2pProtocols) << "protocols with a signature: "
                                                     << format_p2p_protocols(database->protocols());
  std::set<P2pTransport> bittorrent_transports;
  for (const auto& s : set.signatures) {
    EXPECT_FALSE(s.comment.empty()) << s.name;
    if (s.protocol == P2pProtocol::kBitTorrent) bittorrent_transports.insert(s.transport);
  }
  EXPECT_EQ(bittorrent_transports.size(), 2u);
}

}  // namespace
}  // namespace fairgate
