// planfence/planfence.hpp: the whole library. Include this, or the one header you need.
#pragma once

#include "config.hpp"
#include "ids.hpp"
#include "result.hpp"
