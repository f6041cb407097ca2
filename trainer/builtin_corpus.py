"""The built-in English -> French corpus, authored for this project (no copied dataset).

A small deterministic grammar (subjects with gender and number agreement, French adjectives
after the noun, present / past / future, negation, questions, numbers in words and in digits,
people's names and cities) plus hand-written everyday phrases. Sentences are written as people
type them: capitalised and punctuated, but also without the final full stop, with a lower-case
first letter, and with English contractions ("I'm", "doesn't"); the French side is always
written properly, so the model learns that those differences don't change the translation.
`pairs("train")` and `pairs("test")` never share a sentence (in any of its written forms).
"""
from __future__ import annotations

import random
import re
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
    ("bike", "vélo", "m", None, "bikes"), ("phone", "téléphone", "m", None, "phones"),
    ("ticket", "billet", "m", None, "tickets"), ("door", "porte", "f", None, "doors"),
    ("window", "fenêtre", "f", None, "windows"), ("coat", "manteau", "m", "manteaux", "coats"),
    ("cup", "tasse", "f", None, "cups"), ("pen", "stylo", "m", None, "pens"),
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
    ("yellow", "jaune", "jaune", "jaunes", "jaunes"), ("brown", "marron", "marron", "marron", "marron"),
]
STATES = [
    ("tall", "grand", "grande", "grands", "grandes"), ("happy", "heureux", "heureuse", "heureux", "heureuses"),
    ("tired", "fatigué", "fatiguée", "fatigués", "fatiguées"), ("sad", "triste", "triste", "tristes", "tristes"),
    ("ready", "prêt", "prête", "prêts", "prêtes"), ("sick", "malade", "malade", "malades", "malades"),
    ("young", "jeune", "jeune", "jeunes", "jeunes"), ("late", "en retard", "en retard", "en retard", "en retard"),
    ("busy", "occupé", "occupée", "occupés", "occupées"), ("strong", "fort", "forte", "forts", "fortes"),
    ("lost", "perdu", "perdue", "perdus", "perdues"), ("rich", "riche", "riche", "riches", "riches"),
]
# people's names (gender for the agreement of adjectives) and cities: copied unchanged
NAMES = [("Paul", "m"), ("Marie", "f"), ("Tom", "m"), ("Anna", "f"), ("Lucas", "m"), ("Emma", "f"), ("Hugo", "m"),
         ("Léa", "f"), ("Louis", "m"), ("Chloé", "f"), ("David", "m"), ("Sarah", "f"), ("Thomas", "m"), ("Julie", "f"),
         ("Nicolas", "m"), ("Laura", "f"), ("Pierre", "m"), ("Sophie", "f"), ("Karim", "m"), ("Fatima", "f"),
         ("Kenji", "m"), ("Yuki", "f"), ("Omar", "m"), ("Elena", "f"), ("Ivan", "m"), ("Priya", "f"), ("Mateo", "m"),
         ("Ingrid", "f"), ("Kwame", "m"), ("Zoé", "f")]
CITIES = ["Paris", "Boston", "London", "Montreal", "Berlin", "Tokyo", "Rome", "Madrid", "Dakar", "Lyon", "Toronto",
          "Chicago", "Nairobi", "Sydney", "Lima", "Oslo"]
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
    ("take", "takes", "took", ["prends", "prends", "prend", "prenons", "prenez", "prennent"], "pris", "prendr"),
    ("open", "opens", "opened", ["ouvre", "ouvres", "ouvre", "ouvrons", "ouvrez", "ouvrent"], "ouvert", "ouvrir"),
    ("sell", "sells", "sold", ["vends", "vends", "vend", "vendons", "vendez", "vendent"], "vendu", "vendr"),
]
AVOIR = ["ai", "as", "a", "avons", "avez", "ont"]
FUTURE_ENDINGS = ["ai", "as", "a", "ons", "ez", "ont"]
NUMBERS = [("two", "deux"), ("three", "trois"), ("four", "quatre"), ("five", "cinq"),
           ("six", "six"), ("seven", "sept"), ("eight", "huit"), ("nine", "neuf"), ("ten", "dix")]
# everyday phrases, written properly; each also appears with a lower-case first letter and
# without its "!" (then the French has none either)
PHRASES = [
    ("Hello!", "Bonjour !"), ("Hi!", "Salut !"), ("Good morning!", "Bonjour !"),
    ("Good evening!", "Bonsoir !"), ("Good night!", "Bonne nuit !"), ("Goodbye!", "Au revoir !"),
    ("Thank you!", "Merci !"), ("Thank you very much!", "Merci beaucoup !"), ("Thanks!", "Merci !"),
    ("Thanks a lot!", "Merci beaucoup !"), ("Please.", "S'il vous plaît."), ("Yes.", "Oui."), ("No.", "Non."),
    ("Of course!", "Bien sûr !"), ("How are you?", "Comment allez-vous ?"), ("I am fine.", "Je vais bien."),
    ("See you tomorrow!", "À demain !"), ("See you soon!", "À bientôt !"), ("Excuse me.", "Excusez-moi."),
    ("I am sorry.", "Je suis désolé."), ("What is your name?", "Comment vous appelez-vous ?"),
    ("Where is the station?", "Où est la gare ?"), ("Where is the train station?", "Où est la gare ?"),
    ("I do not understand.", "Je ne comprends pas."), ("Help!", "Au secours !"), ("Welcome!", "Bienvenue !"),
    ("Good luck!", "Bonne chance !"), ("Have a nice day!", "Bonne journée !"), ("I love you.", "Je t'aime."),
    ("How much is it?", "Combien ça coûte ?"), ("Cheers!", "Santé !"), ("What time is it?", "Quelle heure est-il ?"),
    ("I am hungry.", "J'ai faim."), ("I am thirsty.", "J'ai soif."), ("It is cold.", "Il fait froid."),
    ("It is hot.", "Il fait chaud."), ("Let's go!", "Allons-y !"), ("Today.", "Aujourd'hui."),
    ("Tomorrow.", "Demain."), ("Yesterday.", "Hier."), ("Where are you?", "Où êtes-vous ?"),
    ("I don't know.", "Je ne sais pas."), ("Nice to meet you!", "Enchanté !"), ("Be careful!", "Attention !"),
    ("Come here!", "Venez ici !"), ("Wait!", "Attendez !"), ("Happy birthday!", "Joyeux anniversaire !"),
    ("Congratulations!", "Félicitations !"), ("Good idea!", "Bonne idée !"), ("No problem.", "Pas de problème."),
]
PHRASE_REPEATS = 2  # single phrases are rare next to thousands of grammar sentences
VOWELS = tuple("aeiouhéèêâ")


def _fr(words: list[str]) -> str:
    """Joins french words applying elision: je/ne/le/la/de/que before a vowel."""
    out: list[str] = []
    for w in words:
        if out and out[-1] in ("je", "ne", "le", "la", "de", "que") and w[:1].lower() in VOWELS:
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


def _subjects(names: int = len(NAMES)):
    """Pronouns, people and animals (singular and plural), and the first `names` names."""
    for en, fr, person, g, pl in PRONOUNS:
        yield en, fr, person, g, pl
    for noun in PEOPLE + NOUNS[:2]:
        for plural in (False, True):
            en, fr, g = _noun_phrase(noun, "the", plural)
            yield en, fr, 5 if plural else 2, g, plural
    for name, g in NAMES[:names]:
        yield name, name, 2, g, False


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


def _colour_sentences():
    """things + be + colour: "the car is red" -> "la voiture est rouge"."""
    for noun in NOUNS:
        for plural in (False, True):
            en_s, fr_s, g = _noun_phrase(noun, "the", plural)
            person = 5 if plural else 2
            for colour in COLOURS:
                for tense in ("present", "past", "future"):
                    for negated in (False, True):
                        verb = BE[tense][person]
                        fr_words = fr_s.split(" ") + (["ne", verb, "pas"] if negated else [verb]) + [_agree(colour, g, plural)]
                        yield " ".join([en_s] + _en_be(person, tense, negated) + [colour[0]]), _fr(fr_words)


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
    for i, noun in enumerate(NOUNS):
        for det in ("the", "a"):
            for plural in (False, True):
                # each noun with one colour (the combinations would be millions of sentences)
                for colour in (None, COLOURS[(i + 3 * plural) % len(COLOURS)]):
                    objects.append((det, plural, _noun_phrase(noun, det, plural, colour)))
    for en_s, fr_s, person, _, _ in _subjects(names=8):
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


def _digit_sentences():
    """"i have 4 red cars" -> "j'ai 4 voitures rouges"; "paul is 23 years old" -> "paul a 23 ans"."""
    numbers = [str(n) for n in range(2, 100)] + ["120", "250", "365", "1000", "2024"]
    subjects = [p[:3] for p in PRONOUNS] + [(name, name, 2) for name, _ in NAMES]
    for en_s, fr_s, person in subjects:
        have = "has" if person == 2 else "have"
        for n in numbers:
            yield f"{en_s} {EN_BE['present'][person]} {n} years old", _fr([fr_s, AVOIR[person], n, "ans"])
            for i, noun in enumerate(NOUNS):
                for colour in (None, COLOURS[(i + len(n)) % len(COLOURS)]):
                    en_word, fr_word, g = noun[4], noun[3] or noun[1] + "s", noun[2]
                    en_o = " ".join([n] + ([colour[0]] if colour else []) + [en_word])
                    fr_o = " ".join([fr_word] + ([_agree(colour, g, True)] if colour else []))
                    yield f"{en_s} {have} {en_o}", _fr([fr_s, AVOIR[person], n] + fr_o.split(" "))


def _name_sentences():
    """Names and cities in everyday sentences; they come out of the translation unchanged."""
    for name, g in NAMES:
        friend = "mon amie" if g == "f" else "mon ami"
        yield f"my name is {name}", f"je m'appelle {name}"
        yield f"his name is {name}", f"il s'appelle {name}"
        yield f"her name is {name}", f"elle s'appelle {name}"
        yield f"this is {name}", f"c'est {name}"
        yield f"{name} is my friend", f"{name} est {friend}"
        yield f"where is {name} ?", f"où est {name} ?"
        yield f"i called {name}", _fr(["j'ai", "appelé", name])
        for city in CITIES:
            yield f"{name} lives in {city}", f"{name} habite à {city}"
            yield f"{name} is going to {city}", f"{name} va à {city}"
        for other, _ in NAMES:
            if other != name:
                yield f"{name} and {other} are here", f"{name} et {other} sont ici"
                yield f"{name} saw {other}", _fr([name, "a", "vu", other])
    for en_s, fr_s, person, _, _ in PRONOUNS:
        live = ["habite", "habites", "habite", "habitons", "habitez", "habitent"][person]
        go = ["vais", "vas", "va", "allons", "allez", "vont"][person]
        for city in CITIES:
            yield f"{en_s} {'lives' if person == 2 else 'live'} in {city}", _fr([fr_s, live, "à", city])
            yield f"{en_s} {'is' if person == 2 else EN_BE['present'][person]} going to {city}", _fr([fr_s, go, "à", city])


# ---- written forms ---------------------------------------------------------------------------

# english contractions, applied to some sentences: "i am not" -> "i'm not", "does not" -> "doesn't"
CONTRACTIONS = [("i am", "i'm"), ("you are", "you're"), ("we are", "we're"), ("they are", "they're"),
                ("he is", "he's"), ("she is", "she's"), ("is not", "isn't"), ("are not", "aren't"),
                ("was not", "wasn't"), ("were not", "weren't"), ("do not", "don't"), ("does not", "doesn't"),
                ("did not", "didn't"), ("will not", "won't")]


def _contract(en: str) -> str:
    for long, short in CONTRACTIONS:
        en = re.sub(rf"(?<![\w']){long}(?![\w'])", short, en)
    return en


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def _render_en(en: str, full_stop: bool = True) -> str:
    """Grammar output -> written english: "I", a capital first letter, "?" attached, final "."."""
    en = re.sub(r"(?<![\w'])i(?=$|[ '])", "I", en).replace(" ?", "?")
    if full_stop and not en.endswith("?"):
        en += "."
    return _sentence_case(en)


def _render_fr(fr: str) -> str:
    """Grammar output -> written french: a capital first letter, a final "." (french keeps the
    space before "?")."""
    return _sentence_case(fr if fr.endswith("?") else fr + ".")


def _written(en: str, fr: str, rng: random.Random) -> tuple[str, str]:
    """One written form of a grammar pair: the english as typed (sometimes contracted, without
    its full stop, or with a lower-case first letter), the french always written properly."""
    if rng.random() < 0.4:
        en = _contract(en)
    form = rng.random()
    written = _render_en(en, full_stop=form >= 0.25)
    if 0.15 <= form < 0.4 and en[:1].islower():  # (a name stays capitalised)
        written = written[:1].lower() + written[1:]
    return written, _render_fr(fr)


def _phrase_forms(en: str, fr: str) -> list[tuple[str, str]]:
    """A phrase as written and with a lower-case first letter; each also without its "!"."""
    forms = [(en, fr)]
    if en.endswith("!"):
        forms.append((en[:-1], fr[:-2]))
    return forms + [(e[:1].lower() + e[1:], f) for e, f in forms]


SIZES = {"state": 1200, "colour": 350, "verb": 1650, "number": 250, "digits": 650, "names": 600}
TEST_FRACTION = 0.1


@lru_cache(maxsize=None)
def _split() -> dict[str, tuple[tuple[str, str], ...]]:
    rng = random.Random(2014)  # fixed: the corpus and its test split never change between runs
    train: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    for name, gen in (("state", _state_sentences), ("colour", _colour_sentences), ("verb", _verb_sentences),
                      ("number", _number_sentences),
                      ("digits", _digit_sentences), ("names", _name_sentences)):
        pool = sorted(dict(gen()).items())  # distinct english sentences
        chosen = rng.sample(pool, SIZES[name])
        n_test = int(len(chosen) * TEST_FRACTION)
        # split first, then write: no written form of a test sentence is in the training split
        test += [_written(en, fr, rng) for en, fr in chosen[:n_test]]
        train += [_written(en, fr, rng) for en, fr in chosen[n_test:]]
    train += [form for en, fr in PHRASES for form in _phrase_forms(en, fr) for _ in range(PHRASE_REPEATS)]
    rng.shuffle(train)
    return {"train": tuple(train), "test": tuple(test)}


def pairs(split: str = "train") -> list[tuple[str, str]]:
    """(english, french) pairs of the "train" or "test" split."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown builtin split {split!r} (use builtin or builtin:test)")
    return list(_split()[split])
