/* bindgen input: the system libvdeplug header (Debian libvdeplug-dev). */
#include <libvdeplug.h>
