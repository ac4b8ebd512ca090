"""The item catalogue of the synthetic world: categories, items, titles and descriptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from streamrec.data.synthetic._world_config import WorldConfig

DAY = 86_400

#: (name, median item length in seconds, words) of the built-in categories
GENRES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("drama", 3000, ("family", "secrets", "betrayal", "inheritance", "courtroom", "marriage",
                     "grief", "redemption", "scandal", "reunion", "hospital", "ambition",
                     "estate", "sisters")),
    ("comedy", 1500, ("hilarious", "sitcom", "prank", "awkward", "roommates", "standup",
                      "parody", "mishap", "wedding", "quirky", "laughs", "office", "misfits",
                      "banter")),
    ("documentary", 3300, ("investigation", "archive", "interviews", "footage", "expose",
                           "evidence", "journalist", "testimony", "crisis", "untold",
                           "society", "filmmaker", "reveals", "insiders")),
    ("thriller", 6000, ("conspiracy", "hostage", "assassin", "fugitive", "heist", "espionage",
                        "suspect", "kidnapping", "chase", "spy", "agent", "ransom",
                        "coverup", "deadline")),
    ("kids", 900, ("cartoon", "puppy", "playground", "dinosaur", "bedtime", "alphabet",
                   "puppets", "friendship", "bunny", "singalong", "classroom", "toys",
                   "counting", "rainbow")),
    ("anime", 1440, ("shonen", "mecha", "samurai", "ninja", "academy", "tournament", "spirits",
                     "shrine", "senpai", "rival", "isekai", "dojo", "manga", "chibi")),
    ("scifi", 6600, ("spaceship", "galaxy", "android", "starship", "colony", "wormhole",
                     "alien", "cyborg", "planet", "quantum", "timeline", "robot", "asteroid",
                     "orbit")),
    ("romance", 6000, ("love", "affair", "proposal", "heartbreak", "soulmate", "kiss",
                       "honeymoon", "crush", "valentine", "courtship", "lovers", "passion",
                       "flirt", "sweethearts")),
    ("horror", 5400, ("haunted", "ghost", "demon", "possession", "curse", "cabin", "slasher",
                      "zombie", "exorcism", "nightmare", "blood", "creature", "asylum",
                      "ritual")),
    ("sports", 1200, ("football", "championship", "league", "goal", "match", "highlights",
                      "coach", "playoff", "stadium", "athlete", "tennis", "basketball",
                      "derby", "referee")),
    ("news", 600, ("headlines", "election", "breaking", "politics", "briefing", "weather",
                   "economy", "bulletin", "parliament", "markets", "anchor", "policy",
                   "correspondent", "summit")),
    ("music", 240, ("concert", "album", "band", "acoustic", "playlist", "singer", "chart",
                    "remix", "guitar", "tour", "vocals", "festival", "studio", "ballad")),
    ("cooking", 900, ("recipe", "kitchen", "chef", "baking", "dessert", "bread", "spicy",
                      "dinner", "grill", "pastry", "vegan", "flavors", "ingredients",
                      "sauce")),
    ("travel", 1800, ("islands", "backpacking", "cities", "roadtrip", "beaches", "culture",
                      "hotels", "passport", "hiking", "destinations", "cruise", "itinerary",
                      "voyage", "landmarks")),
    ("truecrime", 2700, ("murder", "detective", "killer", "case", "forensic", "victims",
                         "trial", "prison", "cold", "serial", "homicide", "motive",
                         "interrogation", "verdict")),
    ("nature", 3000, ("wildlife", "ocean", "rainforest", "predators", "migration", "habitat",
                      "species", "jungle", "whales", "birds", "savanna", "coral", "ecosystem",
                      "arctic")),
    ("history", 3000, ("empire", "ancient", "medieval", "war", "revolution", "pharaoh",
                       "dynasty", "kings", "battle", "civilization", "ruins", "emperor",
                       "archaeology", "centuries")),
    ("reality", 2400, ("contestants", "elimination", "competition", "makeover", "dating",
                       "challenge", "villa", "feud", "judges", "audition", "eviction", "teams",
                       "prize", "confessional")),
    ("fantasy", 6600, ("dragon", "wizard", "kingdom", "sorcery", "quest", "magic", "elves",
                       "prophecy", "sword", "throne", "enchanted", "realm", "legend",
                       "witch")),
    ("action", 6600, ("explosion", "mercenary", "commando", "rescue", "fight", "stunt",
                      "vengeance", "warrior", "martial", "showdown", "gunfight", "convoy",
                      "squad", "mission")),
)

#: category-neutral words mixed into every description
GENERIC_WORDS: tuple[str, ...] = (
    "story", "series", "episode", "season", "new", "world", "life", "follows", "discovers",
    "must", "finally", "together", "young", "old", "city", "night", "day", "first", "last",
    "final", "find", "lost", "home", "friends", "unexpected", "change", "truth", "past",
    "future", "after", "everything", "their", "with", "from", "into", "journey", "group",
    "stars", "meet", "return",
)

TITLE_WORDS: tuple[str, ...] = (
    "Silent", "Golden", "Broken", "Hidden", "Last", "First", "Endless", "Crimson", "Wild",
    "Little", "Dark", "Bright", "Lost", "Secret", "Midnight", "Eternal", "Frozen", "Burning",
    "Distant", "Hollow", "Restless", "Savage", "Gentle", "Electric", "Velvet",
)

_SYLLABLES = ("ka", "lo", "mi", "ru", "ze", "ta", "vo", "ni", "sha", "pe", "dor", "qui", "ban",
              "tel", "rix", "mo", "fa", "gu", "wen", "ost")


@dataclass
class Catalog:
    """Items and categories (internal arrays; index ``i`` is item id ``i + 1``).

    Attributes
    ----------
    category_names : list of str, length C
    cat_prob : ndarray of float64, shape (C,)
        Share of the catalogue's popularity held by each category.
    cat_similar : ndarray of int64, shape (C, 2)
        The two most similar other categories of each category.
    category : ndarray of int64, shape (n_items,)
    popularity : ndarray of float64, shape (n_items,)
        Base popularity (sums to 1; Zipf within category times the category share).
    quality : ndarray of float32, shape (n_items,)
        Latent quality in (0, 1).
    style : ndarray of float32, shape (n_items, d)
        Latent style vector (user-specific appeal beyond the category).
    length : ndarray of int64, shape (n_items,)
        True length in seconds (the written column has injected nulls).
    release_ts : ndarray of int64, shape (n_items,)
    available_day : ndarray of int64, shape (n_items,)
        First simulated day on which the item can be shown (the day after its release).
    by_cat : ndarray of int64, shape (n_items,)
        Item indices sorted by category (stable).
    cat_lo, cat_hi : ndarray of int64, shape (C,)
        ``by_cat[cat_lo[c]:cat_hi[c]]`` are the items of category ``c``.
    frame : pl.DataFrame
        The written ``items`` table.
    null_length : int
        Rows of ``frame`` whose ``length_seconds`` was nulled (injected anomaly).
    """

    category_names: list[str]
    cat_prob: np.ndarray
    cat_similar: np.ndarray
    category: np.ndarray
    popularity: np.ndarray
    quality: np.ndarray
    style: np.ndarray
    length: np.ndarray
    release_ts: np.ndarray
    available_day: np.ndarray
    by_cat: np.ndarray
    cat_lo: np.ndarray
    cat_hi: np.ndarray
    frame: pl.DataFrame
    null_length: int

    @property
    def n_items(self) -> int:
        return len(self.category)

    def day_cdf(self, day: int, fresh_boost: float) -> tuple[np.ndarray, np.ndarray]:
        """Sampling tables of the "production recommender" for one day.

        Returns
        -------
        cdf : ndarray of float64, shape (n_items,)
            Cumulative weights over ``by_cat`` order; unreleased items weigh 0, items
            released in the last weeks are boosted (the service promotes new content).
        released : ndarray of int64, shape (n_released,)
            Indices of the items available on that day.
        """
        avail = self.available_day <= day
        age = np.maximum(day - self.available_day, 0)
        w = self.popularity * avail * (1.0 + fresh_boost * np.exp(-age / 7.0))
        return np.cumsum(w[self.by_cat]), np.flatnonzero(avail)


def _category_table(n_categories: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray, list[tuple[str, ...]]]:
    """Names, median lengths and word lists of ``n_categories`` categories."""
    names, lengths, words = [], [], []
    for c in range(n_categories):
        if c < len(GENRES):
            name, length, vocab = GENRES[c]
        else:  # extra categories get pronounceable pseudo-words, deterministic per seed
            name = f"genre{c + 1}"
            length = int(np.exp(rng.normal(np.log(2000), 0.8)))
            syl = rng.integers(0, len(_SYLLABLES), size=(14, 3))
            vocab = tuple("".join(_SYLLABLES[s] for s in row) + f"{c}" for row in syl)
        names.append(name)
        lengths.append(length)
        words.append(vocab)
    return names, np.asarray(lengths, dtype=np.float64), words


def make_catalog(config: WorldConfig, rng: np.random.Generator) -> Catalog:
    """Generate the items of the world.

    Parameters
    ----------
    config : WorldConfig
    rng : numpy.random.Generator
        The item stream of the world (seeded from ``config.seed``).
    """
    n, n_cat = config.n_items, config.n_categories
    names, median_len, vocab = _category_table(n_cat, rng)

    # category sizes and shares: Zipf-like, in a seeded random order
    raw = 1.0 / np.arange(1, n_cat + 1) ** 0.7
    cat_prob = rng.permutation(raw / raw.sum())
    category = rng.choice(n_cat, size=n, p=cat_prob)
    cat_vec = rng.normal(size=(n_cat, 4))
    cat_vec /= np.linalg.norm(cat_vec, axis=1, keepdims=True)
    sim = cat_vec @ cat_vec.T
    np.fill_diagonal(sim, -np.inf)
    if n_cat >= 3:
        cat_similar = np.argsort(-sim, axis=1)[:, :2]
    else:  # too few categories: the other one (or itself)
        other = (np.arange(n_cat) + 1) % n_cat
        cat_similar = np.stack([other, other], axis=1)

    # Zipf popularity within category: a random rank per item inside its category
    by_cat = np.argsort(category, kind="stable")
    counts = np.bincount(category, minlength=n_cat)
    cat_lo = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    cat_hi = (cat_lo + counts).astype(np.int64)
    order = np.lexsort((rng.random(n), category))  # items by category, random inside
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(cat_lo, counts)
    zipf = 1.0 / (rank + 1.0) ** config.zipf_exponent
    cat_mass = np.bincount(category, weights=zipf, minlength=n_cat)
    popularity = cat_prob[category] * zipf / np.maximum(cat_mass[category], 1e-300)
    popularity /= popularity.sum()

    # latent quality (mildly correlated with popularity), style, length, release, creator
    z_pop = (np.log(zipf) - np.log(zipf).mean()) / (np.log(zipf).std() + 1e-9)
    quality = np.clip(rng.beta(2.5, 2.5, size=n) + 0.05 * z_pop, 0.01, 0.99).astype(np.float32)
    style = (rng.normal(size=(n, config.style_dim)) / np.sqrt(config.style_dim)).astype(np.float32)
    length = np.clip(np.round(median_len[category] * np.exp(rng.normal(0.0, 0.35, size=n))),
                     30, 4 * 3600).astype(np.int64)
    new = rng.random(n) < config.new_item_share
    day_released = np.where(new, rng.integers(0, max(config.n_days, 1), size=n),
                            -rng.integers(1, 3 * 365, size=n))
    release_ts = config.start_ts + day_released * DAY + rng.integers(6 * 3600, 20 * 3600, size=n)
    available_day = day_released + 1
    creators_per_cat = np.maximum(1, np.round(counts / 8.0)).astype(np.int64)
    creator_lo = np.concatenate([[0], np.cumsum(creators_per_cat)[:-1]])
    local = np.floor(creators_per_cat[category] * rng.random(n) ** 2).astype(np.int64)
    creator_id = creator_lo[category] + local + 1

    frame = _item_frame(config, rng, names, vocab, category, cat_similar, length, release_ts,
                        creator_id)
    n_null = 0
    if config.null_rate > 0 and n:
        n_null = int(round(config.null_rate * n))
        if config.guarantee_anomalies:
            n_null = max(n_null, 1)
        nulled = np.zeros(n, dtype=bool)
        nulled[rng.choice(n, size=min(n_null, n), replace=False)] = True
        frame = frame.with_columns(
            pl.when(pl.Series(nulled)).then(None).otherwise(pl.col("length_seconds"))
            .alias("length_seconds"))
        n_null = int(nulled.sum())
    return Catalog(
        category_names=names, cat_prob=cat_prob, cat_similar=cat_similar.astype(np.int64),
        category=category.astype(np.int64), popularity=popularity, quality=quality, style=style,
        length=length, release_ts=release_ts.astype(np.int64),
        available_day=available_day.astype(np.int64), by_cat=by_cat.astype(np.int64),
        cat_lo=cat_lo, cat_hi=cat_hi, frame=frame, null_length=n_null,
    )


def _item_frame(config: WorldConfig, rng: np.random.Generator, names: list[str],
                vocab: list[tuple[str, ...]], category: np.ndarray, cat_similar: np.ndarray,
                length: np.ndarray, release_ts: np.ndarray, creator_id: np.ndarray) -> pl.DataFrame:
    """The ``items`` table: ids, title, description, category, creator, length, release."""
    n = len(category)
    vocab_len = np.array([len(v) for v in vocab])
    cat_words = [w for v in vocab for w in v]
    cat_offset = np.concatenate([[0], np.cumsum(vocab_len)[:-1]])
    all_words = cat_words + list(GENERIC_WORDS)

    # description: 10-20 words; 60% own-category words (Zipf inside the category's list),
    # 10% a similar category's words, 30% generic words
    max_len = 20
    n_words = rng.integers(10, max_len + 1, size=n)
    kind = rng.random((n, max_len))
    src_cat = np.where(kind < 0.6, category[:, None],
                       cat_similar[category, rng.integers(0, cat_similar.shape[1], size=n)][:, None])
    zipf_pick = np.floor(vocab_len[src_cat] * rng.random((n, max_len)) ** 1.6).astype(np.int64)
    word_id = np.where(kind < 0.7, cat_offset[src_cat] + zipf_pick,
                       len(cat_words) + rng.integers(0, len(GENERIC_WORDS), size=(n, max_len)))
    cols = {f"w{j}": _decode(word_id[:, j], all_words, null=j >= n_words) for j in range(max_len)}
    desc = pl.DataFrame(cols).select(
        pl.concat_str(list(cols), separator=" ", ignore_nulls=True).alias("description"))
    # title: "<Adjective> <Category word>" and sometimes a sequel number
    adj = _decode(rng.integers(0, len(TITLE_WORDS), size=n), list(TITLE_WORDS))
    noun = _decode(cat_offset[category] + rng.integers(0, vocab_len[category]),
                   cat_words).str.to_titlecase()
    sequel = rng.random(n) < 0.15
    seq_no = _decode(rng.integers(2, 6, size=n), [str(k) for k in range(6)], null=~sequel)
    title = pl.DataFrame({"a": adj, "n": noun, "s": seq_no}).select(
        pl.concat_str(["a", "n", "s"], separator=" ", ignore_nulls=True).alias("title"))
    return pl.DataFrame({
        "item_id": pl.Series(np.arange(1, n + 1, dtype=np.int64)),
        "title": title["title"],
        "description": desc["description"],
        "category": _decode(category, names),
        "creator_id": pl.Series(creator_id.astype(np.int64)),
        "length_seconds": pl.Series(length.astype(np.int64)),
        "release_ts": pl.Series(release_ts.astype(np.int64)),
    })


def _decode(codes: np.ndarray, words: list[str], null: np.ndarray | None = None) -> pl.Series:
    """A String series ``words[codes]`` (null where ``null``), decoded in Arrow."""
    idx = pa.array(np.asarray(codes, dtype=np.int32), mask=null)
    arr = pc.cast(pa.DictionaryArray.from_arrays(idx, pa.array(words, pa.string())), pa.string())
    return pl.Series(pl.from_arrow(arr))
