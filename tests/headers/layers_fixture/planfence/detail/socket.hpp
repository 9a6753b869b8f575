#pragma once
#include "../result.hpp"
#include "../plan.hpp"
