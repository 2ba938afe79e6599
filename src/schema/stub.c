/* Replaced by the registry implementation. */
#include "schema/schema.h"
