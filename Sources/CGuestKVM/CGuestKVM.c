/* CGuestKVM is header-only (static inline wrappers); this file gives the target a translation unit. */
#include "CGuestKVM.h"
