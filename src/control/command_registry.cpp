#include "control/command_registry.h"

namespace fairgate {
namespace {
std::string error_reply(const std::string& message) {
  return nlohmann::json{{"ok", false}, {"error", message}}.dump();
}
}  // namespace

void CommandRegistry::add(std::string name, std::string help, Handler handler) {
  commands_[std::move(name)] =
      Command{std::move(help), [handler = std::move(handler)](const JsonField& args, int) { return handler(args); }};
}

void CommandRegistry::add_for_connection(std::string name, std::string help, ConnectionHandler handler) {
  commands_[std::move(name)] = Command{std::move(help), std::move(handler)};
}

nlohmann::ordered_json CommandRegistry::list() const {
  auto result = nlohmann::ordered_json::array();
  for (const auto& [name, command] : commands_) result.push_back({{"name", name}, {"help", command.help}});
  return result;
}

std::string CommandRegistry::dispatch(std::string_view request_line, int connection) const {
  nlohmann::json request = nlohmann::json::parse(request_line, nullptr, false);
  if (request.is_discarded()) return error_reply("request: not valid JSON");
  if (!request.is_object()) return error_reply("request: must be a JSON object");
  auto command_field = request.find("command");
  if (command_field == request.end()) return error_reply("command: required");
  if (!command_field->is_string()) return error_reply("command: must be a string");
  for (const auto& [key, value] : request.items())
    if (key != "command" && key != "args") return error_reply(key + ": unknown field (a request has command and args)");
  auto name = command_field->get<std::string>();
  auto it = commands_.find(name);
  if (it == commands_.end()) return error_reply("command: unknown command \"" + name + "\" (see command-list)");
  nlohmann::json empty_args = nlohmann::json::object();
  auto args_field = request.find("args");
  const nlohmann::json& args = args_field == request.end() || args_field->is_null() ? empty_args : *args_field;
  if (!args.is_object()) return error_reply("args: must be an object");
  try {
    auto result = it->second.handler(JsonField(args, "args"), connection);
    return nlohmann::ordered_json{{"ok", true}, {"result", std::move(result)}}.dump(
        -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  } catch (const FieldError& error) {
    return error_reply(error.what());
  } catch (const std::exception& error) {
    return error_reply(name + ": " + error.what());
  }
}

}  // namespace fairgate
