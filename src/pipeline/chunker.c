/*
 * Content-defined chunking: a gear rolling hash with FastCDC's normalised
 * chunking.  Cut points depend only on the bytes just before them, so an
 * insertion early in a stream moves the first boundaries and no others.
 */
#include <stdint.h>
#include <stddef.h>

#include "pipeline/chunker.h"

/*
 * The gear table defines where every chunk boundary falls, and so which
 * chunks of an existing repository a new backup can reuse.  It must NEVER
 * change once released: a different table silently ends deduplication
 * against everything already stored.  It is the first 256 outputs of
 * splitmix64 seeded with 0x70676b6565702d31 ("pgkeep-1"), written out here
 * so that no compiler or generator can ever alter it.
 */
static const uint64_t gear[256] = {
	0x83afe4330c20b138, 0xe349eb8cb0662ec4, 0x0ca506a37ceebd11,
	0x0e61323ad471336f, 0x3159f19803f59329, 0x361c5595a35b561f,
	0xcacac0929c705c9f, 0xd144b1f9e09f6d61, 0x02559e329262db84,
	0x47d8d67c9a781f64, 0xd6695c8124219134, 0x0314cc08ea36f6d7,
	0x7c8ca244aefb83f7, 0x49f27cb1651ac20e, 0x1cb94c5d2653cddc,
	0xe9b39c6b7e60d460, 0xdb2bec761e796f6e, 0xa9b970e85785fdeb,
	0x9b788c950a438e44, 0x306b6ad6a918130e, 0x2775c7165d1b6144,
	0x0027648197be26d3, 0x9076d5eb6b22b222, 0x8c8d79fc8f29c9c4,
	0x809f727afafba8da, 0xfe824d704d3f4f63, 0x6885eb1f82e30131,
	0x86e5e51160013183, 0xe8eeb47c898aff34, 0x2a3803f6b9498cb5,
	0x2f45b1611237c1f6, 0x400a1d18626aca37, 0xa57a65d393f17a9e,
	0x8bd523ce8fe19bd9, 0x12359865e8c91bf8, 0xb5843aca6ff5e48a,
	0xd5d1f0c0a21a39b7, 0xa7fa7c24d23b6fdb, 0x3a0b92b3bc9ec770,
	0xbe9aeef69dcc5d2f, 0xb8292bf201b49370, 0x3e1c025db2d48248,
	0x00eb2ffc957f257a, 0x2a589f7235b53eb3, 0x7735381d9451747b,
	0xf857313db2e8aea4, 0x5d832ea37bec7ccf, 0x8784be8199d3c4d4,
	0x124fa9597d293eee, 0xb1be911968d2f52d, 0x5af7846bd860bd60,
	0x767fdc4391dd4e6f, 0x8d4b5e3c463a21c5, 0x7e44a2e0141a8ccf,
	0xf40c23be744e2cdf, 0x358fc03dac3a48f5, 0x7d05d4a77f3ee004,
	0xaf0eaf0b5b8fee2a, 0xb8994f32d5cd2b63, 0x381a68fbd43e7980,
	0x10bbf3b01a69a08f, 0x9786a48d269a877c, 0xe7469dc0eb7e37d0,
	0xf215f4886d846b43, 0x26f6a204f068edb9, 0x3099ef4741d67fca,
	0x83640355c7d7ebe9, 0x11574b300136be2c, 0xfa28832db2ec7506,
	0x803801b237e9ebcd, 0xd6e1550c4a19ab1e, 0xe75164d640ef26f2,
	0x0fcfd0b3010e478e, 0xc55d5e0f905ea0f8, 0x03444a30ad12e788,
	0xa3a27de286ee7b3e, 0xeb659f6c2b9b03cb, 0x1e32f5030b7954ec,
	0x7914c451b282651b, 0x5a96970015ae3e6a, 0xd76b021c684717eb,
	0xf987b3552e2f42cd, 0xc33e818e2e0e97d2, 0x49c04676d968a1b6,
	0x7f799dbef5592b23, 0x94f5aa70683ed7d7, 0x4bbe47a2c7ea280e,
	0x3ccd9160b52d0d64, 0xde3da2a1fec1a9fb, 0x5e7eb01fd753ba56,
	0x80226bd8ff23a60b, 0x94877015e6b2e806, 0x9ddd00881d1d1cf3,
	0x3fd9f2db70071072, 0xf1e3c15b9fb40dd0, 0xab99173066e5c33f,
	0x2ea8752c785e9bc9, 0x92e904e4a4e2a84f, 0xa85b722c027eab54,
	0xb8b45b3a109950ce, 0x7596d5d0cd1933f2, 0xd95206ed5f8136c8,
	0x6f72392994099ba8, 0x9151ba784667af06, 0x6093b7a503d6707b,
	0x77b35cea21166b8c, 0x511b80d43e721a90, 0x20d6449f9af62be6,
	0x2eac650639497061, 0xb88f805023254de2, 0xfb1669da5041779a,
	0x4ae45a8eeddc27fd, 0x7d7057080663436d, 0xf6817edce8974e19,
	0x1afe070a83d8b4ec, 0xe96be06f82f168fa, 0xb01461bb73599e16,
	0x3201924edd447f5a, 0xe857bcda6323145b, 0x5110efcc48d4fbf3,
	0x9e27701f6c15fac2, 0x9ba0feef450972f8, 0x06a27af984fea2b3,
	0xa39d68f8a7e13617, 0xd6b985725210ecce, 0xaa0a8fef3edc2b2b,
	0x2085d92eed1a1b57, 0x70d14d5efde99275, 0x9ebe865a2b9b87a1,
	0x12bb075ea393cf6a, 0xd3724d01851d8455, 0xf16f1fead6895f2f,
	0x0cbf5165f34c2bb6, 0x9b689c21d9d6d9b2, 0x3dbc846b8a4501fd,
	0x054e213b2e2360d5, 0x85a6d237b8be7790, 0xc5313e7b6125e8c6,
	0x8b8cb0af7d01b08d, 0x53690a67dd3e1a94, 0xaeb9d428d3d491e3,
	0x0e6717a64b43b51b, 0xe9c65e957be3bec2, 0x63a96b70a0a5df07,
	0xe375b7314124647b, 0x5bcebc7cc7ef2da9, 0x637ab71d140a1974,
	0xff8dedf10046b2bb, 0xae2dcb7eaafccabc, 0x447bdbb2eba33fd2,
	0xfb734abcff726627, 0x01115409ba8c088a, 0xe729ef130f6f2686,
	0x102ea567f4efa074, 0x6c6f49e758feeadb, 0x733fffc553f99c31,
	0xefa58eafad9c4361, 0xc018bd30a352ee0a, 0x7a13169bc9d7689f,
	0xfd8446f87456bb5e, 0x861980ffbea276e9, 0x13222d979f25b4e6,
	0xaada0e23cbad1b1d, 0xda82ddaa673e7cb4, 0x603f53dea304f002,
	0xfb25445727d6a6b1, 0xbd1056a059016b8d, 0x3c0f18eef52dc51e,
	0xefbfc6052583dc8d, 0x867fab4f1535205e, 0x82d926e31c71b4f5,
	0x250994de2da98de9, 0x96c84ab54be98836, 0x10d36050f2512676,
	0x5ce00a8b5eb6fe1f, 0xc0a634c13970a464, 0xd3f2699ddfa28016,
	0x14469baaa62efa94, 0xfa5191cb87c4f59f, 0x445a9c9d8511cb45,
	0x3ddc2c603f6091c5, 0x0fc0902787d46104, 0x72c6b34542a32687,
	0xe315ffed6cf7e677, 0x6595eb77fe86f4f3, 0x5ba8d2e8c06b9831,
	0x88bbb932e9cd0bb5, 0xb74342f3ee62d1d9, 0xa0684e8c1a76dc78,
	0x31200fe502592d9e, 0xc104eae09a78eef0, 0x0bcced6e89e23270,
	0xabc62c69789e1dfa, 0x1a37569ecd4da7ae, 0xa0f8f27d646adc37,
	0x87001066acd95346, 0x06da64b0ad6610e4, 0xf35071c20a242ae4,
	0x9a21830b19c4fe88, 0xe847b0442dd58636, 0x6fec8bfaaccbd3e4,
	0x9f1fdea671618da8, 0x58c5189335912a77, 0xacabcd1192acf54c,
	0x7bd52caaf91a0ab5, 0x6221ea9162ef4731, 0x9df3d3d9e215d488,
	0x136e76ce9d9d76d8, 0x6ff81dbec8c75559, 0x31efba8ce220ab20,
	0x606465f95b670969, 0xe80dfaff08552cee, 0x993476eae9d108ca,
	0x122afe49baae790f, 0x030323459012dc42, 0x230eb66bffcc958b,
	0x155178826987c563, 0xb4c5c4eda47f94df, 0xa07e50ea31cff8a0,
	0xdfb9d3f5e4ecde7f, 0xf743955f98918053, 0x1bf2c72cc73952f1,
	0x2e40649220fc8a56, 0x5517d619f0faebb4, 0x19aa43198339552c,
	0x9d2c8974c05d9f39, 0x669bdeae588cd29e, 0x4497595fe94678d6,
	0x423b0f5814f233de, 0xf0908c7b7f59aa9e, 0xad47857360e7dfe7,
	0xe75eb5d35a83fcd5, 0x7ab7a581c6c77663, 0x5a3183eadf5dc67f,
	0xca8034f78deebc36, 0xb038428c0af0f194, 0x9195441983d474d6,
	0xccaf0cbb4b8125a0, 0x1a77c869f0a34999, 0xadce956abf1562de,
	0xed7ce4ed6084a296, 0xcd0858c7f8d8d9ad, 0x4040aaeeea68bdd2,
	0x15129cef167e1d77, 0xb411b30280af226e, 0x2dc39e95f45e75a4,
	0x114d1a5893069c4d, 0xbe18e8da3697bd57, 0x331db1df0d2404ec,
	0x488b102f10787545, 0xce033b5c770de81a, 0x45fdbfc941f8fdc1,
	0x617dc859bda0fc75, 0xc878dec0b1b9e69a, 0x0bf2260d42eeccb4,
	0xb3a4c766bcf4fe19
};

/*
 * The gear hash shifts left one bit per byte, so bit k of the hash depends
 * on the last k + 1 bytes: testing the top bits gives the widest window.
 * Normalised chunking tests two more bits than log2(avg) before the target
 * size and two fewer after it, which pulls chunk sizes towards the average.
 */
static uint64_t top_bits(unsigned n)
{
	if (n == 0)
		return 0;
	if (n >= 64)
		return ~(uint64_t)0;
	return ~(uint64_t)0 << (64 - n);
}

static unsigned log2_floor(size_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

size_t chunker_next(const struct chunker_params *p, const uint8_t *data, size_t len)
{
	unsigned bits = log2_floor(p->avg);
	uint64_t mask_strict = top_bits(bits + 2);
	uint64_t mask_loose = top_bits(bits > 2 ? bits - 2 : 1);
	size_t end, normal, i;
	uint64_t h = 0;

	if (len <= p->min)
		return len;
	end = len < p->max ? len : p->max;
	normal = p->avg < end ? p->avg : end;

	/* Nothing before min can be a cut point, so it is not even hashed. */
	for (i = p->min; i < normal; i++) {
		h = (h << 1) + gear[data[i]];
		if (!(h & mask_strict))
			return i + 1;
	}
	for (; i < end; i++) {
		h = (h << 1) + gear[data[i]];
		if (!(h & mask_loose))
			return i + 1;
	}
	return end;
}

size_t chunker_scan(const struct chunker_params *p, struct chunker_scan *st,
		    const uint8_t *data, size_t len)
{
	unsigned bits = log2_floor(p->avg);
	uint64_t mask_strict = top_bits(bits + 2);
	uint64_t mask_loose = top_bits(bits > 2 ? bits - 2 : 1);
	size_t end, normal, i;
	uint64_t h = st->h;

	if (len <= p->min)
		return 0;
	end = len < p->max ? len : p->max;
	normal = p->avg < end ? p->avg : end;
	i = st->pos < p->min ? p->min : st->pos;

	/* The two loops of chunker_next, resumed where the last call stopped. */
	for (; i < normal; i++) {
		h = (h << 1) + gear[data[i]];
		if (!(h & mask_strict))
			return i + 1;
	}
	for (; i < end; i++) {
		h = (h << 1) + gear[data[i]];
		if (!(h & mask_loose))
			return i + 1;
	}
	st->pos = i;
	st->h = h;
	return end == p->max ? end : 0;
}
