// Self-test of the VAS ankerl/unordered_dense.h stand-in, with the forms
// mediasoup's worker uses. Run by ../check-shims.sh.
#include <ankerl/unordered_dense.h>

#include <cstdio>
#include <string>

enum class Kind : unsigned char
{
	A = 1,
	B = 2
};

struct Key
{
	unsigned int ssrc;
	unsigned short seq;
	bool operator==(const Key& other) const
	{
		return ssrc == other.ssrc && seq == other.seq;
	}
};

struct KeyHash
{
	using is_avalanching = void;
	unsigned long long operator()(const Key& key) const noexcept
	{
		return ankerl::unordered_dense::hash<unsigned long long>{}(
		  (static_cast<unsigned long long>(key.ssrc) << 16) | key.seq);
	}
};

int main()
{
	int failures = 0;
	auto check   = [&failures](bool ok, const char* what)
	{
		if (!ok)
		{
			std::fprintf(stderr, "FAIL: %s\n", what);
			failures++;
		}
	};

	ankerl::unordered_dense::map<std::string, int> byName;
	byName["a"] = 1;
	byName.emplace("b", 2);
	byName.try_emplace("c", 3);
	check(byName.size() == 3 && byName.contains("b") && byName.at("c") == 3, "string map");
	byName.erase("a");
	check(byName.find("a") == byName.end(), "erase");

	ankerl::unordered_dense::map<Kind, std::string> byKind{ { Kind::A, "a" }, { Kind::B, "b" } };
	check(byKind.at(Kind::B) == "b", "enum key");

	int x = 0;
	ankerl::unordered_dense::set<int*> ptrs;
	ptrs.insert(&x);
	check(ptrs.count(&x) == 1, "pointer set");

	ankerl::unordered_dense::map<Key, long, KeyHash> custom;
	custom[Key{ 7, 9 }] = 5;
	check(custom.at(Key{ 7, 9 }) == 5, "custom hasher");

	// The mixer spreads consecutive integers over the high bits too.
	const auto h1 = ankerl::unordered_dense::hash<unsigned int>{}(1);
	const auto h2 = ankerl::unordered_dense::hash<unsigned int>{}(2);
	check(h1 != 1 && (h1 >> 32) != (h2 >> 32), "mixing");
	check(ankerl::unordered_dense::hash<std::string>{}("x") != std::hash<std::string>{}("x"), "string hash mixed");

	if (failures != 0)
	{
		return 1;
	}
	std::printf("unordered_dense compat: all checks passed\n");
	return 0;
}
