// Control commands by name. The socket server and any other front end call dispatch(); a
// handler receives its arguments as a JsonField ("args.port") and throws FieldError to reject
// them, which becomes {"ok": false, "error": "args.port: ..."}.
#pragma once

#include "config/json_path.h"

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace fairgate {

class CommandRegistry {
 public:
  using Handler = std::function<nlohmann::ordered_json(const JsonField& args)>;
  // A command that needs the connection it came on (one that turns it into a stream).
  using ConnectionHandler = std::function<nlohmann::ordered_json(const JsonField& args, int connection)>;

  void add(std::string name, std::string help, Handler handler);
  void add_for_connection(std::string name, std::string help, ConnectionHandler handler);
  // One request line in, one reply line out (without the newline). Never throws.
  // `connection`: the control socket connection it came on, -1 from elsewhere.
  std::string dispatch(std::string_view request_line, int connection = -1) const;
  // [{"name": ..., "help": ...}] sorted by name.
  nlohmann::ordered_json list() const;

 private:
  struct Command {
    std::string help;
    ConnectionHandler handler;
  };
  std::map<std::string, Command, std::less<>> commands_;
};

}  // namespace fairgate
