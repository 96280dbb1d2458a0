# The version matrix runs its programs as the postgres user too.
# shellcheck shell=bash
# shellcheck source=t/helpers/setup_suite.bash
source "$(dirname "${BASH_SOURCE[0]}")/../helpers/setup_suite.bash"
