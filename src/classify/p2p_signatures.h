// The P2P signature set (conf/p2p_signatures.json): which payloads mark a flow as peer-to-peer
// file sharing. A pure function parses the file into plain structs; P2pDatabase compiles them
// into one Hyperscan block-mode database that every worker's P2pInspector scans with (each
// worker has its own scratch); P2pSignatureLoader keeps the running database when a reload
// fails. Control plane only: everything here may allocate and throw.
#pragma once

#include <hs/hs_common.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fairgate {

// Every protocol the signatures can name, in one table (names, IPP2P option, display name).
// X(enum_name, "name in the signature file", "IPP2P option", "display name")
#define FAIRGATE_P2P_PROTOCOLS(X)                                  \
  X(kBitTorrent, "bittorrent", "bit", "BitTorrent")                \
  X(kEdonkey, "edonkey", "edk", "eDonkey")                         \
  X(kGnutella, "gnutella", "gnu", "Gnutella")                      \
  X(kFastTrack, "fasttrack", "kazaa", "FastTrack")                 \
  X(kDirectConnect, "directconnect", "dc", "DirectConnect")        \
  X(kAppleJuice, "applejuice", "apple", "AppleJuice")              \
  X(kSoulSeek, "soulseek", "soul", "SoulSeek")                     \
  X(kWinMx, "winmx", "winmx", "WinMX")                             \
  X(kAres, "ares", "ares", "Ares")                                 \
  X(kXdcc, "xdcc", "xdcc", "XDCC")                                 \
  X(kPpStream, "ppstream", "pps", "PPStream")                      \
  X(kKontiki, "kontiki", "kontiki", "Kontiki")                     \
  X(kAimini, "aimini", "aimini", "Aimini")

enum class P2pProtocol : uint8_t {
  kNone = 0,
#define FAIRGATE_ENUM(e, name, option, display) e,
  FAIRGATE_P2P_PROTOCOLS(FAIRGATE_ENUM)
#undef FAIRGATE_ENUM
      kCount
};
inline constexpr std::size_t kP2pProtocolCount = static_cast<std::size_t>(P2pProtocol::kCount);
// A set of protocols: bit (1 << id); kNone's bit is never set.
using P2pProtocolMask = uint16_t;
static_assert(kP2pProtocolCount <= 16, "P2pProtocolMask has one bit per protocol");
inline constexpr P2pProtocolMask p2p_bit(P2pProtocol protocol) {
  return static_cast<P2pProtocolMask>(1u << static_cast<unsigned>(protocol));
}
inline constexpr P2pProtocolMask kAllP2pProtocols =
    static_cast<P2pProtocolMask>(((1u << kP2pProtocolCount) - 1) & ~1u);

std::string_view p2p_protocol_name(P2pProtocol protocol);     // "bittorrent"; "none"
std::string_view p2p_protocol_option(P2pProtocol protocol);   // IPP2P's "bit"; "none"
std::string_view p2p_protocol_display(P2pProtocol protocol);  // "BitTorrent"; "none"
// A protocol by its name or IPP2P option ("edonkey" or "edk"); nullopt when neither.
std::optional<P2pProtocol> p2p_protocol_from_name(std::string_view name);
// FairNAT's IPP2P_OPTIONS: names or IPP2P options separated by spaces or commas, each with or
// without IPP2P's leading "--" ("--edk --bit", "bittorrent,gnu"); "ipp2p" and "all" stand for
// every protocol. Throws std::invalid_argument naming the first unknown word.
P2pProtocolMask parse_p2p_protocols(std::string_view list);
// The names of the protocols in `mask`, space separated, in table order.
std::string format_p2p_protocols(P2pProtocolMask mask);

enum class P2pTransport : uint8_t { kTcp, kUdp };
// Which side of a flow a signature applies to; the client is the flow's initiator (the sender
// of its first packet), the server the other side.
enum class P2pDirection : uint8_t { kAny, kClient, kServer };
// What a match needs before it gives the verdict:
//   kNone:           nothing, one packet is enough;
//   kOtherDirection: a match of the same protocol in a packet from the other side (eDonkey's
//                    one-byte header and opcode: weak alone, strong when both sides speak it);
//   kAnotherPacket:  a match of the same protocol in an earlier packet of the flow, either side
//                    (uTP data seen mid-flow, one way only).
enum class P2pConfirm : uint8_t { kNone, kOtherDirection, kAnotherPacket };

// A length field the payload must agree with, checked after the pattern matched (a regular
// expression cannot compare a number with the payload's length): the unsigned field of `size`
// bytes at `offset` plus `add` is the length of the message that starts the payload.
struct P2pLengthCheck {
  bool present = false;
  uint16_t offset = 0;        // bytes from the payload start
  uint8_t size = 0;           // 1, 2 or 4 bytes
  bool little_endian = true;  // false: network order
  int32_t add = 0;            // bytes of the message the field does not count (its header)
  bool equal = true;          // true: the message is the whole payload; false: it fits in it
};

struct P2pSignature {
  std::string name;  // unique in the set; shown in verdicts and statistics
  P2pProtocol protocol = P2pProtocol::kNone;
  P2pTransport transport = P2pTransport::kTcp;
  P2pDirection direction = P2pDirection::kAny;
  std::string pattern;    // Hyperscan syntax, as written in the file
  bool anchored = false;  // flag "anchored": matches only at the payload start
  bool caseless = false;  // flag "caseless"
  bool dotall = false;    // flag "dotall": '.' matches every byte, newlines included
  P2pConfirm confirm = P2pConfirm::kNone;
  uint32_t max_offset = 0;  // bytes: the match must end within them (0: anywhere)
  P2pLengthCheck length;
  std::string comment;  // where the signature comes from
};

struct P2pSignatureSet {
  std::vector<P2pSignature> signatures;
};

// Parses the signature file's text strictly: an unknown or bad field is a FieldError naming it
// (`signatures[4].transport: must be "tcp" or "udp"`). Patterns are not compiled here.
P2pSignatureSet parse_p2p_signatures(std::string_view json_text);
// Reads and parses a file; a missing file is a FieldError too.
P2pSignatureSet load_p2p_signatures(const std::filesystem::path& path);

// One Hyperscan block-mode database holding every signature, pattern id = index in the set.
// Immutable once compiled; workers share it, each scanning with its own scratch.
class P2pDatabase {
 public:
  // What a match of one pattern means, checked in the match callback.
  struct Entry {
    P2pProtocol protocol;
    P2pTransport transport;
    P2pDirection direction;
    P2pConfirm confirm;
    P2pLengthCheck length;
  };

  // Compiles every signature of `set`. A pattern Hyperscan refuses is a FieldError naming the
  // signature, its protocol and Hyperscan's message
  // (`signatures[4].pattern: edonkey signature "edk-hello" does not compile: ...`).
  static std::unique_ptr<P2pDatabase> compile(const P2pSignatureSet& set);
  ~P2pDatabase();
  P2pDatabase(const P2pDatabase&) = delete;
  P2pDatabase& operator=(const P2pDatabase&) = delete;

  const hs_database_t* database() const { return database_; }
  std::size_t size() const { return entries_.size(); }
  const Entry& entry(unsigned id) const { return entries_[id]; }
  const std::string& name(unsigned id) const { return names_[id]; }
  P2pProtocolMask protocols() const { return protocols_; }  // those with a signature
  std::size_t bytes() const;                                // the compiled database's size

 private:
  P2pDatabase() = default;
  hs_database_t* database_ = nullptr;
  std::vector<Entry> entries_;
  std::vector<std::string> names_;
  P2pProtocolMask protocols_ = 0;
};

// The database in use and its replacement on reload: a new signature set that does not parse
// or compile leaves the running database as it was.
class P2pSignatureLoader {
 public:
  // Parse and compile; on success the new database becomes current and true is returned, on
  // failure `error` says why and the current database stays.
  bool reload(std::string_view json_text, std::string& error);
  bool reload_file(const std::filesystem::path& path, std::string& error);

  // The database in use (null before the first successful load). Holders keep it alive.
  std::shared_ptr<const P2pDatabase> current() const { return current_; }
  // How many reloads succeeded; workers compare it to notice a new database.
  uint64_t generation() const { return generation_; }

 private:
  // Compiles what `parse` returns and makes it current; a FieldError from either step is the error.
  bool install(const std::function<P2pSignatureSet()>& parse, std::string& error);
  std::shared_ptr<const P2pDatabase> current_;
  uint64_t generation_ = 0;
};

}  // namespace fairgate
