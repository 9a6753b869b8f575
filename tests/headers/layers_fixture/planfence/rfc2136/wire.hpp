#pragma once
#include "../detail/socket.hpp"
