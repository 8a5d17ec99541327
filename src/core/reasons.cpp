#include "core/reasons.h"

#include <array>

namespace fairgate {
namespace {
constexpr std::array<std::string_view, kDropReasonCount> kDropNames = {
#define FAIRGATE_NAME(e, name, help) name,
    FAIRGATE_DROP_REASONS(FAIRGATE_NAME)
#undef FAIRGATE_NAME
};
constexpr std::array<std::string_view, kDropReasonCount> kDropHelp = {
#define FAIRGATE_HELP(e, name, help) help,
    FAIRGATE_DROP_REASONS(FAIRGATE_HELP)
#undef FAIRGATE_HELP
};
constexpr std::array<std::string_view, kPuntReasonCount> kPuntNames = {
#define FAIRGATE_NAME(e, name, help) name,
    FAIRGATE_PUNT_REASONS(FAIRGATE_NAME)
#undef FAIRGATE_NAME
};
}  // namespace

std::string_view drop_reason_name(DropReason reason) {
  return kDropNames[static_cast<std::size_t>(reason)];
}
std::string_view drop_reason_help(DropReason reason) {
  return kDropHelp[static_cast<std::size_t>(reason)];
}
std::string_view punt_reason_name(PuntReason reason) {
  return kPuntNames[static_cast<std::size_t>(reason)];
}

}  // namespace fairgate
