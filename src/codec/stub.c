/* Replaced by the transcoder implementation. */
#include "base/base.h"
