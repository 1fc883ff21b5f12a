// VAS offline build: compile-time check of Debian's flatbuffers headers. No code.
#include <flatbuffers/flatbuffers.h>

static_assert(FLATBUFFERS_VERSION_MAJOR >= 2, "mediasoup-worker needs flatbuffers >= 2");

namespace vas_flatbuffers_check
{
	using builder = flatbuffers::FlatBufferBuilder;
}
