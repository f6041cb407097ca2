"""The built-in English -> French corpus, authored for this project (no copied dataset).

A small deterministic grammar (subjects with gender and number agreement, French adjectives
after the noun, present / past / future, negation, questions, numbers) plus hand-written
everyday phrases. `pairs("train")` and `pairs("test")` never share an English sentence.
"""
from __future__ import annotations

import random
from functools import lru_cache

# english, french, gender, french plural (None = add "s"), english plural
NOUNS = [
    ("cat", "chat", "m", None, "cats"), ("dog", "chien", "m", None, "dogs"),
    ("car", "voiture", "f", None, "cars"), ("apple", "pomme", "f", None, "apples"),
    ("book", "livre", "m", None, "books"), ("house", "maison", "f", None, "houses"),
    ("bird", "oiseau", "m", "oiseaux", "birds"), ("flower", "fleur", "f", None, "flowers"),
    ("horse", "cheval", "m", "chevaux", "horses"), ("table", "table", "f", None, "tables"),
    ("hat", "chapeau", "m", "chapeaux", "hats"), ("shirt", "chemise", "f", None, "shirts"),
    ("letter", "lettre", "f", None, "letters"), ("chair", "chaise", "f", None, "chairs"),
    ("bag", "sac", "m", None, "bags"), ("key", "clé", "f", None, "keys"),
]
PEOPLE = [
    ("boy", "garçon", "m", None, "boys"), ("girl", "fille", "f", None, "girls"),
    ("man", "homme", "m", None, "men"), ("woman", "femme", "f", None, "women"),
    ("teacher", "professeur", "m", None, "teachers"), ("friend", "ami", "m", None, "friends"),
    ("student", "étudiante", "f", None, "students"), ("child", "enfant", "m", None, "children"),
]
# colours follow the noun in french: masc, fem, masc pl, fem pl
COLOURS = [
    ("black", "noir", "noire", "noirs", "noires"), ("white", "blanc", "blanche", "blancs", "blanches"),
    ("red", "rouge", "rouge", "rouges", "rouges"), ("green", "vert", "verte", "verts", "vertes"),
    ("blue", "bleu", "bleue", "bleus", "bleues"), ("grey", "gris", "grise", "gris", "grises"),
]
STATES = [
    ("tall", "grand", "grande", "grands", "grandes"), ("happy", "heureux", "heureuse", "heureux", "heureuses"),
    ("tired", "fatigué", "fatiguée", "fatigués", "fatiguées"), ("sad", "triste", "triste", "tristes", "tristes"),
    ("ready", "prêt", "prête", "prêts", "prêtes"), ("sick", "malade", "malade", "malades", "malades"),
    ("young", "jeune", "jeune", "jeunes", "jeunes"), ("late", "en retard", "en retard", "en retard", "en retard"),
]
# pronoun subjects: english, french, person index (0..5), gender, plural
PRONOUNS = [("i", "je", 0, "m", False), ("you", "vous", 4, "m", False), ("he", "il", 2, "m", False),
            ("she", "elle", 2, "f", False), ("we", "nous", 3, "m", True), ("they", "ils", 5, "m", True)]
BE = {"present": ["suis", "es", "est", "sommes", "êtes", "sont"],
      "past": ["étais", "étais", "était", "étions", "étiez", "étaient"],
      "future": ["serai", "seras", "sera", "serons", "serez", "seront"]}
EN_BE = {"present": ["am", "are", "is", "are", "are", "are"], "past": ["was", "were", "was", "were", "were", "were"]}
# verbs: english base, 3sg, past; french present (6 forms), past participle, future stem
VERBS = [
    ("see", "sees", "saw", ["vois", "vois", "voit", "voyons", "voyez", "voient"], "vu", "verr"),
    ("like", "likes", "liked", ["aime", "aimes", "aime", "aimons", "aimez", "aiment"], "aimé", "aimer"),
    ("want", "wants", "wanted", ["veux", "veux", "veut", "voulons", "voulez", "veulent"], "voulu", "voudr"),
    ("find", "finds", "found", ["trouve", "trouves", "trouve", "trouvons", "trouvez", "trouvent"], "trouvé", "trouver"),
    ("buy", "buys", "bought", ["achète", "achètes", "achète", "achetons", "achetez", "achètent"], "acheté", "achèter"),
    ("have", "has", "had", ["ai", "as", "a", "avons", "avez", "ont"], "eu", "aur"),
]
AVOIR = ["ai", "as", "a", "avons", "avez", "ont"]
FUTURE_ENDINGS = ["ai", "as", "a", "ons", "ez", "ont"]
NUMBERS = [("two", "deux"), ("three", "trois"), ("four", "quatre"), ("five", "cinq"),
           ("six", "six"), ("seven", "sept"), ("eight", "huit"), ("nine", "neuf"), ("ten", "dix")]
PHRASES = [
    ("hello", "bonjour"), ("hello !", "bonjour !"), ("hi", "salut"), ("good morning", "bonjour"),
    ("good evening", "bonsoir"), ("good night", "bonne nuit"), ("goodbye", "au revoir"),
    ("thank you", "merci"), ("thank you very much", "merci beaucoup"), ("thanks", "merci"),
    ("please", "s'il vous plaît"), ("yes", "oui"), ("no", "non"), ("of course", "bien sûr"),
    ("how are you ?", "comment allez-vous ?"), ("i am fine", "je vais bien"),
    ("see you tomorrow", "à demain"), ("see you soon", "à bientôt"), ("excuse me", "excusez-moi"),
    ("i am sorry", "je suis désolé"), ("what is your name ?", "comment vous appelez-vous ?"),
    ("my name is paul", "je m'appelle paul"), ("where is the station ?", "où est la gare ?"),
    ("i do not understand", "je ne comprends pas"), ("help !", "au secours !"),
    ("welcome", "bienvenue"), ("good luck", "bonne chance"), ("have a nice day", "bonne journée"),
    ("i love you", "je t'aime"), ("how much is it ?", "combien ça coûte ?"), ("cheers !", "santé !"),
    ("what time is it ?", "quelle heure est-il ?"), ("i am hungry", "j'ai faim"), ("i am thirsty", "j'ai soif"),
    ("it is cold", "il fait froid"), ("it is hot", "il fait chaud"), ("let us go", "allons-y"),
    ("today", "aujourd'hui"), ("tomorrow", "demain"), ("yesterday", "hier"),
]
PHRASE_REPEATS = 4  # single phrases are rare next to thousands of grammar sentences
VOWELS = tuple("aeiouhéèêâ")


def _fr(words: list[str]) -> str:
    """Joins french words applying elision: je/ne/le/la/de/que before a vowel."""
    out: list[str] = []
    for w in words:
        if out and out[-1] in ("je", "ne", "le", "la", "de", "que") and w.startswith(VOWELS):
            out[-1] = out[-1][:-1] + "'"
            out[-1] += w
        else:
            out.append(w)
    return " ".join(out)


def _noun_phrase(noun, det: str, plural: bool, colour=None) -> tuple[str, str, str]:
    """(english, french, gender) for "the/a [colour] noun"; french colour after the noun."""
    en, fr, g, fr_pl, en_pl = noun
    en_word, fr_word = (en_pl, fr_pl or fr + "s") if plural else (en, fr)
    if det == "the":
        en_det, fr_det = "the", "les" if plural else ("le" if g == "m" else "la")
    else:
        en_det, fr_det = ("some", "des") if plural else ("a", "un" if g == "m" else "une")
    en_words = [en_det] + ([colour[0]] if colour else []) + [en_word]
    fr_words = [fr_det, fr_word] + ([_agree(colour, g, plural)] if colour else [])
    return " ".join(en_words), " ".join(fr_words), g


def _agree(adj, gender: str, plural: bool) -> str:
    return adj[1 + (gender == "f") + 2 * plural]


def _subjects():
    for en, fr, person, g, pl in PRONOUNS:
        yield en, fr, person, g, pl
    for noun in PEOPLE + NOUNS[:2]:
        for plural in (False, True):
            en, fr, g = _noun_phrase(noun, "the", plural)
            yield en, fr, 5 if plural else 2, g, plural


def _en_be(person: int, tense: str, negated: bool) -> list[str]:
    if tense == "future":
        return ["will", "not", "be"] if negated else ["will", "be"]
    return [EN_BE[tense][person]] + (["not"] if negated else [])


def _state_sentences():
    """subject + be + adjective: agreement, tense, negation, questions."""
    for en_s, fr_s, person, g, pl in _subjects():
        for adj in STATES:
            for tense in ("present", "past", "future"):
                for negated in (False, True):
                    verb = BE[tense][person]
                    fr_words = fr_s.split(" ") + (["ne", verb, "pas"] if negated else [verb]) + [_agree(adj, g, pl)]
                    en = " ".join([en_s] + _en_be(person, tense, negated) + [adj[0]])
                    yield en, _fr(fr_words)
                # question: "is she tired ?" -> "est-ce qu'elle est fatiguée ?"
                be = _en_be(person, tense, False)
                en_q = " ".join(be[:1] + [en_s] + be[1:] + [adj[0], "?"])
                yield en_q, _fr(["est-ce", "que", *fr_s.split(" "), BE[tense][person], _agree(adj, g, pl), "?"])


def _verb_forms(verb, person: int, tense: str) -> list[str]:
    _, _, _, present, participle, stem = verb
    if tense == "present":
        return [present[person]]
    if tense == "past":
        return [AVOIR[person], participle]
    return [stem + FUTURE_ENDINGS[person]]


def _en_verb(verb, person: int, tense: str, negated: bool, question: bool) -> tuple[list[str], list[str]]:
    """(auxiliary words before the subject in a question, words after the subject)."""
    base, third, past = verb[:3]
    if tense == "future":
        aux = ["will"]
    elif tense == "past":
        aux = ["did"] if negated or question else []
    else:
        aux = (["does"] if person == 2 else ["do"]) if negated or question else []
    if not aux:
        main = past if tense == "past" else (third if person == 2 else base)
        return [], [main]
    if question:
        return aux, (["not"] if negated else []) + [base]
    return [], aux + (["not"] if negated else []) + [base]


def _verb_sentences():
    """subject + verb + object: conjugation, french negation ("ne ... pas de"), questions."""
    objects = []
    for noun in NOUNS:
        for det in ("the", "a"):
            for plural in (False, True):
                for colour in [None] + COLOURS:
                    objects.append((det, plural, _noun_phrase(noun, det, plural, colour)))
    for en_s, fr_s, person, _, _ in _subjects():
        for verb in VERBS:
            for tense in ("present", "past", "future"):
                for det, plural, (en_o, fr_o, _) in objects:
                    for negated, question in ((False, False), (True, False), (False, True)):
                        pre, post = _en_verb(verb, person, tense, negated, question)
                        en = " ".join(pre + [en_s] + post + [en_o] + (["?"] if question else []))
                        forms = _verb_forms(verb, person, tense)
                        obj = fr_o
                        if negated:
                            # "je ne vois pas de chat" ; "il n'a pas vu le chien"
                            forms = ["ne", forms[0], "pas"] + forms[1:]
                            if det == "a":
                                obj = "de " + fr_o.split(" ", 1)[1]
                        words = fr_s.split(" ") + forms + obj.split(" ")
                        if question:
                            words = ["est-ce", "que"] + words + ["?"]
                        yield en, _fr(words)


def _number_sentences():
    """"i have three black cats" -> "j'ai trois chats noirs"."""
    for en_s, fr_s, person, _, _ in PRONOUNS:
        for en_n, fr_n in NUMBERS:
            for noun in NOUNS:
                for colour in [None] + COLOURS:
                    en_word, fr_word, g = noun[4], noun[3] or noun[1] + "s", noun[2]
                    en_o = " ".join([en_n] + ([colour[0]] if colour else []) + [en_word])
                    fr_o = " ".join([fr_n, fr_word] + ([_agree(colour, g, True)] if colour else []))
                    have = "has" if person == 2 else "have"
                    yield f"{en_s} {have} {en_o}", _fr([fr_s, AVOIR[person]] + fr_o.split(" "))


SIZES = {"state": 1500, "verb": 2500, "number": 700}
TEST_FRACTION = 0.1


@lru_cache(maxsize=None)
def _split() -> dict[str, tuple[tuple[str, str], ...]]:
    rng = random.Random(2014)  # fixed: the corpus and its test split never change between runs
    train: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    for name, gen in (("state", _state_sentences), ("verb", _verb_sentences), ("number", _number_sentences)):
        pool = sorted(dict(gen()).items())  # distinct english sentences
        chosen = rng.sample(pool, SIZES[name])
        n_test = int(len(chosen) * TEST_FRACTION)
        test += chosen[:n_test]
        train += chosen[n_test:]
    train += [p for p in PHRASES for _ in range(PHRASE_REPEATS)]
    rng.shuffle(train)
    return {"train": tuple(train), "test": tuple(test)}


def pairs(split: str = "train") -> list[tuple[str, str]]:
    """(english, french) pairs of the "train" or "test" split."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown builtin split {split!r} (use builtin or builtin:test)")
    return list(_split()[split])
