// VAS offline build of mediasoup-sys: a stand-in for ankerl/unordered_dense.h.
//
// The real library (martinus/unordered_dense) is not packaged in Debian
// bookworm and cannot be downloaded here. mediasoup's worker only uses three of
// its names:
//
//   ankerl::unordered_dense::map<Key, T[, Hash]>
//   ankerl::unordered_dense::set<Key[, Hash]>
//   ankerl::unordered_dense::hash<T>   (called directly to feed HashCombine)
//
// They are mapped onto std::unordered_map / std::unordered_set, which offer the
// same member functions mediasoup calls (find, emplace, try_emplace, erase,
// contains, reserve, size, iteration). Differences that do not matter to
// mediasoup (it used std::unordered_map before switching to unordered_dense):
//   - iteration order is unspecified rather than insertion order;
//   - references stay valid across insertions (stronger, not weaker);
//   - value_type is std::pair<const Key, T> as in std::unordered_map.
//
// hash<T> returns a 64-bit value passed through a strong 64-bit mixer
// (the MurmurHash3 fmix64 finalizer), because libstdc++'s std::hash for
// integers and pointers is the identity, and mediasoup combines several such
// hashes into one (Utils::Crypto::HashCombine) for tuple keys.

#ifndef VAS_ANKERL_UNORDERED_DENSE_COMPAT_H
#define VAS_ANKERL_UNORDERED_DENSE_COMPAT_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

// Version macros of the upstream header, reporting the API level emulated.
#define ANKERL_UNORDERED_DENSE_VERSION_MAJOR 5
#define ANKERL_UNORDERED_DENSE_VERSION_MINOR 3
#define ANKERL_UNORDERED_DENSE_VERSION_PATCH 2
#define VAS_ANKERL_UNORDERED_DENSE_IS_STD_COMPAT 1

namespace ankerl
{
	namespace unordered_dense
	{
		namespace detail
		{
			// MurmurHash3 fmix64: every input bit affects every output bit.
			constexpr std::uint64_t mix64(std::uint64_t x) noexcept
			{
				x ^= x >> 33U;
				x *= UINT64_C(0xff51afd7ed558ccd);
				x ^= x >> 33U;
				x *= UINT64_C(0xc4ceb9fe1a85ec53);
				x ^= x >> 33U;

				return x;
			}
		} // namespace detail

		// Primary template: any type std::hash supports (std::string, custom
		// specializations, ...), with its result mixed.
		template<typename T, typename Enable = void>
		struct hash
		{
			using is_avalanching = void;

			std::uint64_t operator()(const T& value) const
			  noexcept(noexcept(std::hash<T>{}(std::declval<const T&>())))
			{
				return detail::mix64(static_cast<std::uint64_t>(std::hash<T>{}(value)));
			}
		};

		// Integers and enums: mix the value itself (no detour through std::hash).
		template<typename T>
		struct hash<T, typename std::enable_if<std::is_integral<T>::value || std::is_enum<T>::value>::type>
		{
			using is_avalanching = void;

			std::uint64_t operator()(const T& value) const noexcept
			{
				using U = typename std::conditional<
				  std::is_enum<T>::value,
				  std::underlying_type<T>,
				  std::enable_if<true, T>>::type::type;

				return detail::mix64(static_cast<std::uint64_t>(static_cast<U>(value)));
			}
		};

		// Raw pointers: mix the address.
		template<typename T>
		struct hash<T*>
		{
			using is_avalanching = void;

			std::uint64_t operator()(T* ptr) const noexcept
			{
				return detail::mix64(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(ptr)));
			}
		};

		template<typename Key,
		         typename T,
		         typename Hash      = hash<Key>,
		         typename KeyEqual  = std::equal_to<Key>,
		         typename Allocator = std::allocator<std::pair<const Key, T>>>
		using map = std::unordered_map<Key, T, Hash, KeyEqual, Allocator>;

		template<typename Key,
		         typename Hash      = hash<Key>,
		         typename KeyEqual  = std::equal_to<Key>,
		         typename Allocator = std::allocator<Key>>
		using set = std::unordered_set<Key, Hash, KeyEqual, Allocator>;
	} // namespace unordered_dense
} // namespace ankerl

#endif
