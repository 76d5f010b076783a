"""Prompt screening for generation requests: deterministic rules that say why.

**What is refused** (reason codes, NCII first; :data:`RULES` is the table):

* ``ncii.reference_face``: a reference image shows a face and the prompt asks for nudity,
  undressing, sexual or revealing content ("put her in a bikini" is the request that got
  a platform blocked by whole countries);
* ``ncii.reference_explicit``: a reference image shows a face and is itself explicit
  (open_nsfw at or above the threshold): any edit of it continues the abuse;
* ``ncii.reference_blocked``: a reference upload matched a block bank in the pipeline;
* ``ncii.named_person``: the prompt names or points at a real person (see below) and asks
  for nudity, undressing, sexual or revealing content;
* ``minor.sexual``: a minor and any sexual, undressing or sexualising content;
* ``classifier.<id>``: a plugged-in text classifier (``textmodel``) scored over its threshold.

Nudity, sex or swimwear alone are not refused: figure drawing, medical illustration, art
history and swimwear catalogues are what a generator is for. The harm this guard exists
for needs an identifiable real person, or a child.

**A real person** (cheap, documented heuristics; each match names the cue, never the name):

* ``reference_face``: a reference image in which the face detector finds a face;
* ``name_pair``: two consecutive capitalised words that are not on the stop list (sentence
  verbs, art, places, garments ...), skipped when the prompt is in Title Case (every word
  capitalised says nothing about names); or a common given name followed by another word
  in any case ("emma watson");
* ``handle``: an ``@handle``;
* ``relation``: "my ex", "my classmate", "my coworker", "the girl from work", "this woman" ...;
* ``public_figure``: "celebrity", "influencer", "famous actress", "streamer", "politician" ...

**Obfuscation** is undone before matching (:func:`views`): NFKC (full-width, ligatures),
case folding, accents stripped, zero-width characters dropped, Cyrillic/Greek homoglyphs
mapped to Latin, spaced or dotted letters joined ("n u d e", "n.u.d.e"), leetspeak in words
that mix letters and digits ("n4k3d"), runs of one letter squeezed ("nuuude"), listed
misspellings and one edit (transposition, insertion, deletion, substitution) on long terms,
and the nudity, undressing and child words of Spanish, French, German, Portuguese and Italian.

Known gaps, on purpose: a name in lower case that does not start with a listed given name,
a person described without a name ("the blonde cashier"), and languages beyond those five
pass the rules; that is what the classifier slot is for.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- the rules ----------------------------------------------------------------------------------

REFERENCE_FACE = "ncii.reference_face"
REFERENCE_EXPLICIT = "ncii.reference_explicit"
REFERENCE_BLOCKED = "ncii.reference_blocked"
NAMED_PERSON = "ncii.named_person"
MINOR_SEXUAL = "minor.sexual"
CLASSIFIER_PREFIX = "classifier."
RATE_LIMITED = "rate_limited"

RULES: dict[str, str] = {
    REFERENCE_FACE: "a reference image shows a face and the prompt asks for nudity, undressing, sexual or revealing content",
    REFERENCE_EXPLICIT: "a reference image shows a face and is itself sexually explicit (open_nsfw)",
    REFERENCE_BLOCKED: "a reference upload matched a block bank in the pipeline",
    NAMED_PERSON: "the prompt names or points at a real person and asks for nudity, undressing, sexual or revealing content",
    MINOR_SEXUAL: "the prompt involves a minor and sexual, undressing or sexualising content",
    CLASSIFIER_PREFIX + "<id>": "a configured text classifier scored the prompt at or above its threshold",
    RATE_LIMITED: "a per-user or per-tenant quota is spent (429)",
}

# --- lexicons (normalised: lower case, no accents; "*" ends a prefix; "=" matches the word only
# as written, not with its letter runs squeezed: squeezed, "boobs" is "bobs" and "xxx" is "x") ----

# Nudity and sex. "nude" as a colour ("nude heels") is excluded by NUDE_COLOUR below.
SEXUAL = (
    "nude", "nudes", "naked", "nakedness", "nudity", "nsfw", "porn*", "=xxx", "sex", "sexual*", "sexually",
    "erotic*", "hentai", "onlyfans", "=boobs", "=boobies", "tits", "titties", "nipple*", "genital*", "penis",
    "vagina", "pussy", "cum", "orgasm*", "masturbat*", "blowjob", "handjob", "intercourse", "fuck*", "horny",
    "lewd", "topless", "bottomless", "striptease", "stripper", "deepnude", "nekkid", "nakid", "nakey",
    "nudez", "noods", "nood", "nued", "neked", "nudy", "nudie*", "n00d*", "smut*", "fetish*", "bdsm",
    "bondage",
    # es / fr / de / pt / it
    "desnud*", "encuerad*", "sexo", "nue", "nues", "nackt*", "nackig", "sexe", "pelad*", "nua", "nuas",
    "nuda", "nude", "pelada", "porno", "sesso", "sexy",
)
# "sexy" is both: it sexualises a real person but says nothing about nudity.
SEXUAL_PHRASES = (
    r"bare (breasts?|chest|body|skin|butt)", r"exposed (breasts?|body|genitals?)", r"having sex",
    r"making love", r"spread(ing)? (her|his|their) legs", r"sexually explicit", r"in the nude",
    r"oben ohne", r"a poil", r"tout nue?", r"senza veli", r"x{3,}",
    r"explicit (photos?|images?|pics?|pictures?|content|scenes?|videos?|shots?|version|nudes?)",
)
UNDRESS = (
    "undress*", "unclothe*", "disrob*", "nudif*", "nudfy", "nudefy", "declothe*", "unclad", "deshabill*",
    "ausziehen", "ausgezogen", "entkleid*", "spogliat*", "spogliare", "svestit*", "despid*", "despir",
    "desvestid*", "desvestir", "desnudar*", "undres",
)
_GARMENT = r"(clothes|clothing|dress|shirt|top|bra|bikini|underwear|panties|pants|skirt|outfit|jeans|swimsuit|lingerie)"
UNDRESS_PHRASES = (
    rf"(take|takes|taking|took|rip|ripping|ripped|tear|tearing|remove|removes|removing|removed|strip|stripping|"
    rf"stripped|pull|pulling|peel|peeling|cut|cutting|lose|losing) (off )?(all )?(of )?(her|his|their|my|your)"
    rf"( \w+)? {_GARMENT}( off)?",
    rf"{_GARMENT} off", r"(without|no|zero|minus) (any )?(clothes|clothing)",
    rf"(without|no|minus|lose|losing) (her|his|their) {_GARMENT}", r"stripped naked",
    rf"see (through|thru) (her|his|their) {_GARMENT}", r"x ?ray (her|him|them|clothes|clothing|vision)",
    r"sin ropa", r"quitar(le)? la ropa", r"sans (vetements|habits)", r"ohne kleidung", r"sem roupa",
    r"tirar a roupa", r"senza vestiti", r"nothing on",
)
# Revealing, suggestive or sexualising, harmless without a real person.
REVEALING = (
    "bikini*", "lingerie", "underwear", "bra", "bras", "panties", "thong*", "gstring", "swimsuit*", "swimwear",
    "seethrough", "sexy", "seductive*", "seduct*", "provocative*", "sensual*", "cleavage", "skimpy",
    "lingere", "linegrie", "bikni", "bkini", "bikin", "negligee", "nightie", "corset", "stockings",
    "bathingsuit", "pinup", "boudoir", "raunchy", "steamy", "titillating", "suggestive", "busty",
    "sexi", "seksi", "sexxy", "costume de bain", "reizwasche", "biquini", "costume da bagno",
)
REVEALING_PHRASES = (r"wet (t ?shirt|shirt)", r"in a towel", r"bathing suit", r"see through", r"g string",
                     r"barely (dressed|clothed)", r"scantily (clad|dressed)", r"less clothes", r"fewer clothes")
# What sexualises a child even without nudity; swimwear alone does not (children's catalogues).
SEXUALISING = ("sexy", "seductive*", "seduct*", "provocative*", "sensual*", "lingerie", "thong*", "gstring",
               "bikini*", "underwear", "panties", "boudoir", "pinup", "raunchy", "steamy", "titillating",
               "suggestive", "busty", "cleavage", "negligee", "corset", "stockings", "skimpy", "lingere")
MINOR = (
    "child", "children", "childlike", "kid", "kids", "kiddie", "toddler*", "infant*", "preteen*", "tween*",
    "teen", "teens", "teenage*", "underage*", "minors", "schoolgirl*", "schoolboy*", "loli", "lolita", "shota*",
    "jailbait", "daughter", "stepdaughter", "niece", "prepubescent", "pubescent", "juvenile*",
    "nina", "nino", "ninas", "ninos", "adolescent*", "enfant*", "fillette*", "mineure", "mineur", "kind",
    "kinder", "minderjahrig*", "crianca*", "menor", "menores", "bambin*", "minorenne*", "ragazzin*",
)
MINOR_PHRASES = (
    r"a minor", r"little (girl|boy)s?", r"young (girl|boy)s?", r"school (girl|boy)s?", r"middle school(er)?s?",
    r"elementary school", r"high schooler", r"grade school(er)?", r"under (the age of )?18",
    r"menor de (edad|idade)",
)
_AGE_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
              "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
              "sixteen": 16, "seventeen": 17}
_AGE = re.compile(r"\b(\d{1,2}|" + "|".join(_AGE_WORDS) + r")\s*(?:-\s*)?(?:yo|y o|yrs?|years?|year)\b(?:\s*-?\s*old)?"
                  r"|\bag(?:e|ed)\s+(\d{1,2})\b")
NUDE_COLOUR = re.compile(r"\bnude (lip\w*|heels?|shoes?|pumps?|colou?r\w*|tones?|palette|make ?up|beige|tights|"
                         r"nails?|polish|sandals?|bag|dress|gown|blouse|trench|coat|shade|hue|eyeshadow|mules|"
                         r"stilettos?|flats|boots?|loafers|stockings|bodysuit|slip|leotard)\b")

RELATION = re.compile(
    r"\b(my|our|his|her|their) (?:\w+ ){0,2}(ex|ex ?(girl|boy)friend|ex ?wife|ex ?husband|girlfriend|boyfriend|wife|husband|"
    r"crush|classmate|class mate|coworker|co worker|colleague|boss|teacher|professor|student|neighbou?r|friend|"
    r"best friend|sister|stepsister|step sister|cousin|aunt|mom|mother|stepmom|step mom|roommate|tutor|"
    r"babysitter|nanny|partner|date|tinder match|landlady|manager|secretary|nurse|doctor|therapist|coach|"
    r"sister in law|mother in law|bride|girl|woman|lady|guy)\b"
    r"|\b(this|that|the) (girl|woman|lady|guy|man|boy|person|chick|teen|cashier|waitress|barista) "
    r"(from|at|in|next door|i met|i know|on|who)\b"
    r"|\b(this|that) (girl|woman|lady|chick|person)\b"
    r"|\b(a|the) (girl|woman|guy|boy|lady) (from|in) my (school|class|office|work|gym|building|street|church)\b"
    r"|\b(mi|mis|ma|mon|mes|meine|meiner|minha|meu|la mia|il mio|mia) (compan[ea]r[ao]|vecin[ao]|profesor[a]?|jef[ae]|"
    r"novi[ao]|espos[ao]|prima|voisine?|collegue|prof|copine|copain|nachbarin|kollegin|mitschulerin|freundin|"
    r"lehrerin|chefin|vizinha|colega|namorada|esposa|professora|vicina|collega|compagna|ragazza|moglie)\b"
    r"|\bher real name\b|\breal person\b|\bmi ex\b|\bmon ex\b|\bmeine ex\b|\bminha ex\b|\bla mia ex\b")
PUBLIC_FIGURE = re.compile(
    r"\b(celebrit(y|ies)|celeb|celebs|influencer|streamer|youtuber|tiktoker|twitch streamer|instagram model|"
    r"onlyfans model|politician|senator|congresswoman|congressman|president|prime minister|princess|"
    r"news ?anchor|newsreader|famous (actress|actor|singer|model|woman|person|rapper|athlete|star)|"
    r"(actress|singer|rapper|popstar|pop star|athlete) (named|called)|k ?pop idol)\b")

# Given names common enough that "<name> <word>" in lower case is a person; words that are
# also ordinary English (grace, hope, may, rose, summer, faith ...) are left out.
GIVEN_NAMES = frozenset("""
emma olivia ava sophia isabella mia charlotte amelia harper evelyn abigail emily elizabeth sofia madison avery
ella scarlett victoria aria chloe camila penelope layla riley zoey nora lily eleanor hannah lillian addison aubrey
ellie stella natalie zoe leah hazel violet aurora savannah audrey brooklyn bella claire skylar lucy anna samantha
caroline genesis aaliyah kennedy kinsley allison maya sarah madelyn adeline alexa ariana elena gabriella naomi
alice sadie hailey eva emilia autumn quinn nevaeh piper ruby serenity willow everly cora kaylee lydia aubree
arianna eliana peyton melanie gianna isabelle julia valentina clara vivian reagan mackenzie madeline brielle
delilah isla rylee katherine sophie josephine ivy liliana jade maria taylor hadley kylie emery adalynn natalia
annabelle faith alexandra ximena ashley brianna raelynn bailey mary athena andrea leilani jasmine lyla margaret
alyssa adalyn arya norah khloe kayla eden eliza rose ariel melody alina rachel jennifer jessica megan kate katie
kim kylie kendall khloe selena miley beyonce rihanna billie dua ana scarlet angelina natalie margot zendaya
gal jenna nicole paris lindsay britney christina shakira jennifer salma sydney anya florence sabrina olivia
john james robert michael william david richard joseph thomas charles christopher daniel matthew anthony mark
donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan jacob
gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander patrick frank
raymond jack dennis jerry tyler aaron jose adam nathan henry zachary douglas peter kyle noah ethan jeremy walter
christian keith roger terry austin sean gerald carl harold dylan arthur lawrence jordan jesse bryan billy bruce
gabriel joe logan alan juan albert willie elijah wayne randy vincent liam elon barack kamala hillary greta
timothee harry zac tom brad leonardo keanu chris emmanuel vladimir olaf giorgia angela ursula
""".split())

# Public figures known by one name, matched in any case: the capital-letter cues miss them
# at the start of a sentence and in lower case.
MONONYMS = frozenset("""
shakira rihanna beyonce zendaya anitta madonna adele cher lizzo rosalia bjork lisa jennie jisoo rose
iu doja sza halsey lorde grimes pink ciara brandy aaliyah kesha normani bhad tyla karol becky ariana
""".split()) - {"lisa", "rose", "pink"}
# Where a lone capitalised word is more likely a painting, a place or a myth than a person.
ART_CONTEXT = re.compile(r"\b(painting|painted|fresco|statue|sculpture|museum|masterpiece|in the style of|"
                         r"in the manner of|renaissance|baroque|classical|oil on canvas|art history|mythology|"
                         r"goddess|myth|allegory|reclining)\b")

STOP_CAPITALISED = frozenset("""
a an the this that these those my her his their our your its make create generate draw show render paint put
give turn edit change add remove take photo photograph picture image portrait illustration sketch drawing
painting please ultra realistic photorealistic hyperrealistic art nouveau deco renaissance baroque rococo
gothic greek roman classical classic venus milo sistine chapel new york los angeles san francisco north south
east west spring summer autumn fall winter collection catalogue catalog fashion week vogue medical anatomy
anatomical hospital museum gallery monday tuesday wednesday thursday friday saturday sunday january february
march april may june july august september october november december christmas easter halloween oil style
studio ghibli disney pixar marvel dc star wars trek figure study class model life drawing beach resort summer
swimwear swimsuit bikini lingerie nude naked sexy high school university college king queen saint st mount
lake river sea ocean island city street avenue park national european american british french german italian
spanish portuguese japanese chinese korean indian african asian latin ancient medieval modern contemporary
baroque impressionist impressionism cubist cubism surrealist surrealism pop art hd uhd 4k 8k cinematic dslr
canon nikon sony leica kodak fujifilm polaroid instagram tiktok youtube facebook twitter mr mrs ms dr sir lady
lord prince princess doctor nurse professor captain general president senator i i'm im it is in on at of for
with and or but by from as to be do not no yes all any some one two three red blue green black white golden
pink purple orange yellow brown gray grey silver dark light bright soft hard big small tall short young old
happy sad beautiful pretty cute handsome elegant vintage retro futuristic cyberpunk steampunk fantasy sci fi
science fiction anime manga cartoon comic watercolor watercolour pencil charcoal ink digital 3d cgi unreal
engine octane blender midjourney stable diffusion dall e line oil acrylic pastel marble bronze statue
sculpture fresco mural museum louvre met uffizi prado botticelli michelangelo da vinci leonardo raphael
rubens titian goya rembrandt manet monet degas renoir klimt schiele modigliani picasso matisse ingres
""".split())

# Cyrillic and Greek letters drawn like Latin ones, after case folding (NFKC does not map them).
HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l",
    "ԛ": "q", "ԝ": "w", "ɡ": "g", "ı": "i", "ł": "l", "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k",
    "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ѵ": "v", "ß": "ss", "æ": "ae",
    "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "þ": "th",
})
# The same for upper case, keeping the case: names are found by their capitals.
HOMOGLYPHS_CASED = str.maketrans({
    **{k: v for k, v in zip("АВЕЁКМНОРСТУХЅІЇЈԌΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEEKMHOPCTYXSIIJGABEZHIKMNOPTYX", strict=True)},
    **{k: v for k, v in zip("аеёкмнорсухѕіїјԁһӏαεικνορτυχ", "aeekmhopcyxsiijdhlaeikvoptux", strict=True)},
})
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063"), None)
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a",
                      "$": "s", "!": "i", "|": "i", "+": "t", "€": "e", "9": "g"})
_LEET_TOKEN = re.compile(r"[a-z0-9@$!|+€]*[a-z][a-z0-9@$!|+€]*")
_SPACED = re.compile(r"(?<![a-z0-9])(?:[a-z][\s._*\-~/\\]+){2,}[a-z](?![a-z])")
_INNER_SEP = re.compile(r"(?<=[a-z])[._*\-~'’`^]+(?=[a-z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def squeeze(text: str) -> str:
    """Runs of one letter to one letter: "nuuude" and "nakked" become "nude" and "naked"."""
    return re.sub(r"([a-z])\1+", r"\1", text)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(ZERO_WIDTH).casefold().translate(HOMOGLYPHS)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def views(prompt: str) -> list[str]:
    """The prompt as the rules read it: folded (see the module docstring) and, if it differs,
    the same with leetspeak undone; each with separators collapsed to single spaces.

    >>> views("Make h3r N.U.D.E")
    ['make h3r nude', 'make her nude']
    """
    folded = _fold(prompt)
    folded = _SPACED.sub(lambda m: re.sub(r"[^a-z]", "", m.group(0)), folded)
    folded = _INNER_SEP.sub("", folded)
    plain = " ".join(_NON_WORD.sub(" ", folded).split())
    # Leet only inside tokens that mix letters with digits or symbols: "13 years old" stays.
    leet_source = " ".join(re.sub(r"[^a-z0-9@$!|+€]+", " ", folded).split())
    leet = _LEET_TOKEN.sub(lambda m: m.group(0).translate(LEET), leet_source)
    leet = " ".join(_NON_WORD.sub(" ", leet).split())
    return [plain] if leet == plain else [plain, leet]


# --- term matching ------------------------------------------------------------------------------


def _term_matcher(terms: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...], frozenset[str]]:
    exact, prefixes, multi = set(), [], set()
    for term in terms:
        if term.startswith("="):
            continue  # matched unsqueezed (Lexicon.find)
        if " " in term:
            multi.add(squeeze(term))
        elif term.endswith("*"):
            prefixes.append(squeeze(term[:-1]))
        else:
            exact.add(squeeze(term))
    return frozenset(exact), tuple(prefixes), frozenset(multi)


def _one_edit(a: str, b: str) -> bool:
    """Damerau distance exactly <= 1 (substitution, insertion, deletion or transposition)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if la < lb else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


@dataclass(frozen=True)
class Lexicon:
    name: str
    terms: tuple[str, ...]
    phrases: tuple[str, ...] = ()
    # Terms at least this long also match one edit away (only distinctive words: "naked"
    # one edit from "baked" is why short words do not).
    fuzzy: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        exact, prefixes, multi = _term_matcher(self.terms)
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_prefixes", prefixes)
        object.__setattr__(self, "_multi", multi)
        object.__setattr__(self, "_phrases", tuple(re.compile(rf"\b(?:{p})\b") for p in self.phrases))
        # Matches are reported as the lexicon spells them ("topless", not the squeezed "toples").
        object.__setattr__(self, "_canon", {squeeze(t.rstrip("*")) + ("*" if t.endswith("*") else ""): t
                                            for t in self.terms})

    def find(self, text: str) -> list[str]:
        """The lexicon entries found in one view (canonical forms, never the prompt's text)."""
        found: list[str] = []
        tokens = text.split()
        squeezed = [squeeze(t) for t in tokens]
        verbatim = {t[1:] for t in self.terms if t.startswith("=")}
        found += [t for t in tokens if t in verbatim]
        for token in squeezed:
            if token in self._exact:  # type: ignore[attr-defined]
                found.append(token)
            else:
                hit = next((p for p in self._prefixes if token.startswith(p)), None)  # type: ignore[attr-defined]
                if hit is not None:
                    found.append(hit + "*")
                else:
                    near = next((f for f in self.fuzzy if len(token) >= 5 and _one_edit(token, squeeze(f))), None)
                    if near is not None:
                        found.append(f"{near}~")
        joined = " ".join(squeezed)
        # Multi-word entries and compounds written apart ("see through", "g string").
        found += [m for m in self._multi if re.search(rf"\b{re.escape(m)}\b", joined)]  # type: ignore[attr-defined]
        compact = {a + b for a, b in zip(squeezed, squeezed[1:], strict=False)}
        found += [c for c in compact if c in self._exact and len(c) >= 6]  # type: ignore[attr-defined]
        canon = self._canon  # type: ignore[attr-defined]
        found = [canon.get(f, canon.get(f + "*", f)) for f in found]
        for pattern in self._phrases:  # type: ignore[attr-defined]
            m = pattern.search(text)
            if m:
                found.append(m.group(0))
        return found


# Fuzzy only where one edit away is no other word: not "erotic" (exotic), "seductive" (deductive).
_SEXUAL = Lexicon("sexual", SEXUAL, SEXUAL_PHRASES, fuzzy=("nudity", "topless", "pornographic"))
_UNDRESS = Lexicon("undress", UNDRESS, UNDRESS_PHRASES, fuzzy=("undress", "undressed", "nudify", "unclothed"))
_REVEALING = Lexicon("revealing", REVEALING, REVEALING_PHRASES, fuzzy=("lingerie", "underwear"))
_SEXUALISING = Lexicon("sexualising", SEXUALISING, fuzzy=("lingerie",))
_MINOR = Lexicon("minor", MINOR, MINOR_PHRASES, fuzzy=("schoolgirl", "toddler", "underage", "teenager"))


def _minor_ages(text: str) -> list[str]:
    out = []
    for m in _AGE.finditer(text):
        raw = m.group(1) or m.group(2)
        age = _AGE_WORDS.get(raw) if raw in _AGE_WORDS else int(raw)
        if age is not None and age < 18:
            out.append("age<18")
    return out


# --- real-person cues ---------------------------------------------------------------------------

_HANDLE = re.compile(r"(?<![\w.@])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?\b")
_CAP_WORD = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
_NAME_PAIR = re.compile(rf"\b({_CAP_WORD})\s+(?:(?:de|da|di|del|van|von|le|la|al|bin)\s+)?({_CAP_WORD})\b")
_LEXICON_WORDS = frozenset(squeeze(t.strip("=*")) for t in (*SEXUAL, *UNDRESS, *REVEALING, *MINOR) if " " not in t)
_PLACE_WORDS = frozenset("in at from near on to across around over visiting into outside inside above below "
                         "through under via toward towards".split())
_PARTICLES = {"de", "da", "di", "del", "van", "von", "le", "la", "al", "bin"}


def _is_stop(word: str) -> bool:
    w = word.casefold()
    return w in STOP_CAPITALISED or squeeze(w) in _LEXICON_WORDS or any(
        squeeze(w).startswith(p) for p in _SEXUAL._prefixes)  # type: ignore[attr-defined]


def person_cues(prompt: str, plain: str) -> list[str]:
    """How the prompt points at a real person: ``handle``, ``name_pair``, ``given_name``,
    ``relation``, ``public_figure`` (each at most once; never the name itself)."""
    cues: list[str] = []
    if _HANDLE.search(unicodedata.normalize("NFKC", prompt)):
        cues.append("handle")
    text = unicodedata.normalize("NFKC", prompt).translate(ZERO_WIDTH).translate(HOMOGLYPHS_CASED)
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    capitalised = [w for w in words if w[0].isupper()]
    title_case = len(words) >= 4 and len(capitalised) / len(words) > 0.6
    if text.isupper():  # shouting hides the case that names carry: read it in Title Case
        text, title_case = text.title(), False
    # Names in leetspeak ("T4yl0r Sw1ft"): digits inside a capitalised word read as letters.
    text = re.sub(r"\b[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*\b", lambda m: m.group(0).translate(LEET)
                  if any(c.isdigit() for c in m.group(0)) else m.group(0), text)
    if not title_case:
        for m in _NAME_PAIR.finditer(text):
            first, second = m.group(1), m.group(2)
            if not (_is_stop(first) or _is_stop(second)):
                cues.append("name_pair")
                break
    if not title_case and not ART_CONTEXT.search(plain):
        # A lone capitalised word inside a sentence ("photo of Shakira"): a person more often
        # than not once the prompt also asks for nudity (the only time a cue matters).
        for sentence in re.split(r"[.!?;:\n]+", text):
            words_in = re.findall(r"[A-Za-z][A-Za-z'-]*", sentence)
            for before, word in zip(words_in, words_in[1:], strict=False):
                name = word.split("'")[0]
                # "in Ibiza", "at Coachella", "Manet's Olympia": a place or a work, not a person.
                if before.casefold() in _PLACE_WORDS or before.endswith(("'s", "s'")):
                    continue
                if len(name) >= 4 and name[0].isupper() and name[1:].islower() and not _is_stop(name):
                    cues.append("mononym")
                    break
            if "mononym" in cues:
                break
    tokens = plain.split()
    if any(t in MONONYMS for t in tokens):
        cues.append("known_mononym")
    for i, token in enumerate(tokens[:-1]):
        follower = tokens[i + 2] if tokens[i + 1] in _PARTICLES and i + 2 < len(tokens) else tokens[i + 1]
        if token in GIVEN_NAMES and follower.isalpha() and len(follower) >= 2 and not _is_stop(follower):
            cues.append("given_name")
            break
    if RELATION.search(plain):
        cues.append("relation")
    if PUBLIC_FIGURE.search(plain):
        cues.append("public_figure")
    return cues


# --- screening ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceEvidence:
    """What is known about one reference image: faces found, its open_nsfw score, whether
    the pipeline matched it to a block bank. ``source``: ``pipeline`` (read from the item
    the pipeline scored) or ``local`` (the models run on a file)."""

    ref: str
    faces: int
    nsfw: float | None = None
    blocked: bool = False
    source: str = "pipeline"


@dataclass(frozen=True)
class TextScore:
    """One text classifier's score for the prompt, with the threshold it refuses at."""

    model: str
    score: float
    threshold: float
    sha256: str | None = None


@dataclass(frozen=True)
class PromptSignals:
    """What the rules found in the prompt (lexicon entries and cue names only)."""

    sexual: tuple[str, ...] = ()
    undress: tuple[str, ...] = ()
    revealing: tuple[str, ...] = ()
    sexualising: tuple[str, ...] = ()
    minor: tuple[str, ...] = ()
    person: tuple[str, ...] = ()

    @property
    def intimate(self) -> tuple[str, ...]:
        """Nudity, undressing, sex or revealing content: what NCII asks for."""
        return self.sexual + self.undress + self.revealing

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(getattr(self, k)) for k in ("sexual", "undress", "revealing", "minor", "person") if getattr(self, k)}


@dataclass(frozen=True)
class Verdict:
    """The screening outcome: ``allowed``, ``reasons`` (rule codes, in :data:`RULES` order) and
    ``matched``: per reason the rule and what triggered it."""

    allowed: bool
    reasons: list[str]
    matched: list[dict[str, Any]] = field(default_factory=list)
    signals: PromptSignals = PromptSignals()


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def analyse(prompt: str) -> PromptSignals:
    """Every lexicon and cue the prompt hits, in every normalised view."""
    found: dict[str, list[str]] = {k: [] for k in ("sexual", "undress", "revealing", "sexualising", "minor")}
    all_views = views(prompt)
    for view in all_views:
        text = NUDE_COLOUR.sub(" ", view)
        for lexicon in (_SEXUAL, _UNDRESS, _REVEALING, _SEXUALISING, _MINOR):
            found[lexicon.name] += lexicon.find(text)
        found["minor"] += _minor_ages(view)
    return PromptSignals(sexual=_unique(found["sexual"]), undress=_unique(found["undress"]),
                         revealing=_unique(found["revealing"]), sexualising=_unique(found["sexualising"]),
                         minor=_unique(found["minor"]), person=_unique(person_cues(prompt, all_views[0])))


def screen(prompt: str, references: Sequence[ReferenceEvidence] = (), text_scores: Sequence[TextScore] = (),
           *, reference_nsfw_threshold: float = 0.8) -> Verdict:
    """Screen one generation request; refused when any rule matches.

    Example::

        v = screen("put her in a bikini", [ReferenceEvidence("m1", faces=1, nsfw=0.03)])
        v.allowed, v.reasons  # (False, ['ncii.reference_face'])
    """
    signals = analyse(prompt)
    matched: list[dict[str, Any]] = []
    faced = [r for r in references if r.faces > 0]
    intimate = signals.intimate
    if faced and intimate:
        matched.append({"rule": REFERENCE_FACE, "references": [r.ref for r in faced], "terms": list(intimate)})
    explicit = [r for r in faced if r.nsfw is not None and r.nsfw >= reference_nsfw_threshold]
    if explicit:
        matched.append({"rule": REFERENCE_EXPLICIT, "references": [r.ref for r in explicit],
                        "nsfw": [round(r.nsfw or 0.0, 4) for r in explicit], "threshold": reference_nsfw_threshold})
    blocked = [r for r in references if r.blocked]
    if blocked:
        matched.append({"rule": REFERENCE_BLOCKED, "references": [r.ref for r in blocked]})
    if signals.person and intimate:
        matched.append({"rule": NAMED_PERSON, "person": list(signals.person), "terms": list(intimate)})
    sexualised = signals.sexual + signals.undress + signals.sexualising
    if signals.minor and sexualised:
        matched.append({"rule": MINOR_SEXUAL, "minor": list(signals.minor), "terms": list(_unique(sexualised))})
    for s in text_scores:
        if s.score >= s.threshold:
            matched.append({"rule": CLASSIFIER_PREFIX + s.model, "score": round(s.score, 4), "threshold": s.threshold})
    reasons = list(_unique(m["rule"] for m in matched))
    return Verdict(allowed=not reasons, reasons=reasons, matched=matched, signals=signals)
