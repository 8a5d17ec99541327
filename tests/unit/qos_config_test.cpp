// The fair-sharing parts of the configuration: rates in FairNAT's units, link framing, the qos
// section, subscribers, and the checks across them.
#include "config/config.h"

#include <gtest/gtest.h>

namespace fairgate {
namespace {}  // namespace
}  // namespace fairgate
