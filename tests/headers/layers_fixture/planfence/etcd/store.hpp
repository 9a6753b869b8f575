#pragma once
#include "../plan.hpp"
#include "../rfc2136/wire.hpp"
