/* The version string, in its own file so that the gateway library always has at least one object. */
#include "version.h"

const char cf_version[] = CONFLUX_VERSION;
