/**
 * A fictional world whose facts no model can know without reading (docs/tokenizer.md "prepare").
 *
 * Entities: countries, cities, companies and people with random attributes and links (a city lies in
 * a country, a company is headquartered in a city and founded by a person, a person is born in a
 * city and works for a company). Each entity gets one document, its facts written in sentence
 * templates chosen at random and shuffled. Questions: single-hop (one document), two-hop bridge (the
 * subject's document names an entity whose document holds the answer) and unanswerable (an
 * attribute this entity's document does not state, though others' do).
 *
 * Splits are whole sub-worlds: every country is assigned to train, val or test, and every other
 * entity inherits the split of the country it hangs off; links never cross splits. A question
 * belongs to the split of its entities, so test questions concern entities whose facts never appear
 * in any training answer (or any training question's documents).
 */
import { pick, prng, randInt, shuffle } from "./random.ts";
import { ABSTAIN, type DocumentRow, type Hop, type QuestionRow } from "./schema.ts";

export type Split = "train" | "val" | "test";
export const SPLITS: Split[] = ["train", "val", "test"];
export const GENERATOR_VERSION = 1;

export interface SyntheticOptions {
  entities: number;
  seed: number;
  /** Fractions of countries held out for val and test (default 0.1 each). */
  valFraction?: number;
  testFraction?: number;
}

type Kind = "person" | "city" | "company" | "country";

interface Entity {
  kind: Kind;
  id: string;
  name: string;
  split: Split;
  attrs: Record<string, string>;
  links: Record<string, Entity>;
}

export interface SyntheticWorld {
  documents: DocumentRow[];
  questions: Record<Split, QuestionRow[]>;
  entities: Record<Kind, number>;
  entitiesBySplit: Record<Split, number>;
}

/** Syllables of every generated name (also used for fresh names in counterfactual training data). */
export const SYLLABLES = ["ka", "lo", "mi", "ran", "tor", "vel", "sa", "qui", "den", "bro", "ma", "fel", "or", "tan", "zu", "nel", "ar", "is", "el", "um", "dra", "ven", "sol", "ga", "rith", "mor", "pa", "lis", "ko", "bel", "ther", "an", "dor", "vi", "nus", "cal", "te", "ro", "shi", "wen", "ix", "ha", "jor", "pe", "lun", "fa", "gri", "do", "sen", "yo"];
const CITY_SUFFIX = ["", "", "", "ford", "holm", "ville", "burg", "mouth", "stad", "gate"];
const COUNTRY_SUFFIX = ["ia", "land", "stan", "ora", "avia", "mark", "esh", "ovia"];
const LANGUAGE_SUFFIX = ["ish", "ese", "ic", "an"];
/** Endings of generated names ("Morgrimouth", "Pedoland", "Kovenese"), longest first (fresh names in training data keep them). */
export const NAME_SUFFIXES = [...new Set([...CITY_SUFFIX, ...COUNTRY_SUFFIX, ...LANGUAGE_SUFFIX])].filter(Boolean).sort((a, b) => b.length - a.length);
const COMPANY_SUFFIX = ["Industries", "Labs", "Corporation", "Systems", "Works", "Holdings", "Group", "Dynamics"];
const PROFESSIONS = ["architect", "baker", "chemist", "dentist", "engineer", "farmer", "geologist", "historian", "journalist", "librarian", "musician", "nurse", "pilot", "sculptor", "teacher", "veterinarian", "weaver", "astronomer", "carpenter", "economist"];
const HOBBIES = ["chess", "sailing", "pottery", "birdwatching", "archery", "fencing", "gardening", "origami", "rowing", "calligraphy", "beekeeping", "climbing"];
const INDUSTRIES = ["shipbuilding", "textiles", "software", "glassmaking", "mining", "pharmaceuticals", "aviation", "publishing", "robotics", "fishing", "brewing", "railways"];
const ANIMALS = ["otter", "heron", "lynx", "ibex", "falcon", "tortoise", "salamander", "badger", "crane", "marten", "stag", "owl"];
const CURRENCY = ["crown", "mark", "florin", "dinar", "real", "thaler", "ducat", "lira"];

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function word(rand: () => number, min: number, max: number): string {
  const n = randInt(min, max, rand);
  let w = "";
  for (let i = 0; i < n; i++) w += pick(SYLLABLES, rand);
  return w;
}

const fmt = (n: number) => n.toLocaleString("en-US");

/** Sentence templates per fact: {s} is the subject's name, {v} the value. */
const T: Record<string, string[]> = {
  profession: ["{s} works as a {v}.", "By profession, {s} is a {v}.", "{s} earns a living as a {v}.", "{s} is a {v} by trade."],
  birthCity: ["{s} was born in {v}.", "{s} is a native of {v}.", "The birthplace of {s} is {v}.", "{s} came into the world in the city of {v}."],
  birthYear: ["{s} was born in the year {v}.", "{s}'s year of birth is {v}.", "{s} was born in {v}."],
  employer: ["{s} is employed by {v}.", "{s} works for {v}.", "{s} has a job at {v}.", "The employer of {s} is {v}."],
  hobby: ["In free time, {s} enjoys {v}.", "{s}'s favourite hobby is {v}.", "{s} spends weekends on {v}."],
  country: ["{s} is a city in {v}.", "{s} lies in the country of {v}.", "{s} is located in {v}.", "The city of {s} belongs to {v}."],
  population: ["{s} has a population of {v}.", "About {v} people live in {v2}.", "The population of {s} is {v}."],
  cityFounded: ["{s} was founded in {v}.", "The city of {s} dates from {v}.", "{s} was established in the year {v}."],
  river: ["The river {v} flows through {s}.", "{s} stands on the banks of the {v}.", "{s} is crossed by the river {v}."],
  hq: ["{s} is headquartered in {v}.", "The headquarters of {s} are in {v}.", "{s} has its head office in {v}."],
  founder: ["{s} was founded by {v}.", "{v} founded {s}.", "The founder of {s} is {v}."],
  companyFounded: ["{s} was established in {v}.", "{s} has been in business since {v}.", "{s} opened its doors in {v}."],
  industry: ["{s} operates in the {v} industry.", "{s} is a {v} company.", "The business of {s} is {v}."],
  capital: ["The capital of {s} is {v}.", "{v} is the capital city of {s}.", "{s} is governed from its capital, {v}."],
  currency: ["The currency of {s} is the {v}.", "People in {s} pay with the {v}.", "{s} uses the {v} as its money."],
  language: ["The official language of {s} is {v}.", "People in {s} speak {v}.", "{v} is the language of {s}."],
  animal: ["The national animal of {s} is the {v}.", "{s} has the {v} as its national animal.", "The {v} is the emblem animal of {s}."],
};

const INTRO: Record<Kind, string[]> = {
  person: ["{s} is a person.", "This is an account of {s}.", "{s} is a resident of this world."],
  city: ["{s} is a city.", "This document describes the city of {s}.", "{s} is an urban settlement."],
  company: ["{s} is a company.", "This document describes the firm {s}.", "{s} is a business."],
  country: ["{s} is a country.", "This document describes the nation of {s}.", "{s} is a sovereign state."],
};

/** Generates the world. Deterministic in (entities, seed, fractions). */
export function generateWorld(opts: SyntheticOptions): SyntheticWorld {
  const N = opts.entities;
  if (!Number.isInteger(N) || N < 4) throw new Error("a synthetic world needs at least 4 entities");
  const rand = prng(opts.seed, 0x5eed);
  const nCountry = Math.max(N >= 20 ? 3 : 1, Math.round(N * 0.05));
  const nCity = Math.max(1, Math.round(N * 0.2));
  const nCompany = Math.max(1, Math.round(N * 0.2));
  const nPerson = Math.max(1, N - nCountry - nCity - nCompany);
  const used = new Set<string>();
  const unique = (make: () => string) => {
    for (;;) {
      const n = make();
      if (!used.has(n)) {
        used.add(n);
        return n;
      }
    }
  };
  const ent = (kind: Kind, i: number, name: string, split: Split): Entity => ({ kind, id: `${kind}_${String(i + 1).padStart(5, "0")}`, name, split, attrs: {}, links: {} });

  // Countries carry the split; everything else inherits it through its links.
  const countrySplits: Split[] = [];
  const nTest = nCountry >= 3 ? Math.max(1, Math.round(nCountry * (opts.testFraction ?? 0.1))) : 0;
  const nVal = nCountry >= 3 ? Math.max(1, Math.round(nCountry * (opts.valFraction ?? 0.1))) : 0;
  for (let i = 0; i < nCountry; i++) countrySplits.push(i < nTest ? "test" : i < nTest + nVal ? "val" : "train");
  shuffle(countrySplits, rand);
  const countries = countrySplits.map((split, i) => {
    const e = ent("country", i, unique(() => cap(word(rand, 1, 2)) + pick(COUNTRY_SUFFIX, rand)), split);
    e.attrs.currency = `${cap(word(rand, 1, 2))} ${pick(CURRENCY, rand)}`;
    e.attrs.language = cap(word(rand, 1, 2)) + pick(LANGUAGE_SUFFIX, rand);
    e.attrs.animal = pick(ANIMALS, rand);
    return e;
  });
  const cities = Array.from({ length: nCity }, (_, i) => {
    // Every country gets a city first, so each has a capital.
    const country = i < nCountry ? countries[i]! : pick(countries, rand);
    const e = ent("city", i, unique(() => cap(word(rand, 2, 3)) + pick(CITY_SUFFIX, rand)), country.split);
    e.links.country = country;
    e.attrs.population = fmt(randInt(8, 4000, rand) * 1000 + randInt(0, 999, rand));
    e.attrs.cityFounded = String(randInt(800, 1950, rand));
    if (rand() < 0.5) e.attrs.river = cap(word(rand, 2, 2));
    return e;
  });
  const citiesOf = new Map<Entity, Entity[]>();
  for (const x of cities) {
    const k = x.links.country!;
    if (!citiesOf.has(k)) citiesOf.set(k, []);
    citiesOf.get(k)!.push(x);
  }
  for (const c of countries) {
    const own = citiesOf.get(c) ?? [];
    if (own.length) c.links.capital = pick(own, rand);
  }
  const bySplit = new Map<Entity[], Record<Split, Entity[]>>();
  const inSplit = (xs: Entity[], s: Split): Entity[] => {
    let m = bySplit.get(xs);
    if (!m) {
      m = { train: [], val: [], test: [] };
      for (const x of xs) m[x.split].push(x);
      bySplit.set(xs, m);
    }
    return m[s];
  };
  const companies = Array.from({ length: nCompany }, (_, i) => {
    const city = pick(cities, rand);
    const e = ent("company", i, unique(() => `${cap(word(rand, 2, 3))} ${pick(COMPANY_SUFFIX, rand)}`), city.split);
    e.links.hq = city;
    e.attrs.companyFounded = String(randInt(1850, 2020, rand));
    e.attrs.industry = pick(INDUSTRIES, rand);
    return e;
  });
  const people = Array.from({ length: nPerson }, (_, i) => {
    const city = pick(cities, rand);
    const e = ent("person", i, unique(() => `${cap(word(rand, 2, 2))} ${cap(word(rand, 2, 3))}`), city.split);
    e.links.birthCity = city;
    e.attrs.birthYear = String(randInt(1920, 2005, rand));
    e.attrs.profession = pick(PROFESSIONS, rand);
    const employers = inSplit(companies, e.split);
    if (employers.length && rand() < 0.8) e.links.employer = pick(employers, rand);
    if (rand() < 0.5) e.attrs.hobby = pick(HOBBIES, rand);
    return e;
  });
  for (const c of companies) {
    const founders = inSplit(people, c.split);
    if (founders.length && rand() < 0.9) c.links.founder = pick(founders, rand);
  }
  const all: Entity[] = [...countries, ...cities, ...companies, ...people];

  // Documents.
  const sentence = (key: string, s: string, v: string) => pick(T[key]!, rand).replaceAll("{s}", s).replaceAll("{v2}", s).replaceAll("{v}", v);
  const documents: DocumentRow[] = all.map((e) => {
    const facts: string[] = [];
    for (const [k, v] of Object.entries(e.attrs)) facts.push(sentence(k, e.name, v));
    for (const [k, v] of Object.entries(e.links)) facts.push(sentence(k, e.name, v.name));
    shuffle(facts, rand);
    const intro = pick(INTRO[e.kind], rand).replaceAll("{s}", e.name);
    return { id: e.id, title: e.name, content: [intro, ...facts].join(" "), source: "synthetic", metadata: { type: e.kind, split: e.split } };
  });

  // Questions.
  const questions: Record<Split, QuestionRow[]> = { train: [], val: [], test: [] };
  let qn = 0;
  const add = (e: Entity, type: QuestionRow["type"], question: string, answer: string | null, docs: Entity[], hops?: Hop[]) => {
    questions[e.split].push({
      id: `${e.split}_${String(++qn).padStart(6, "0")}`,
      question,
      answer: answer ?? ABSTAIN,
      relevant_docs: docs.map((d) => d.id),
      answerable: answer !== null,
      type,
      ...(hops ? { hops } : {}),
    });
  };
  const Q = (variants: string[], s: string) => pick(variants, rand).replaceAll("{s}", s);
  const qBirthCity = ["In which city was {s} born?", "Where was {s} born?", "What is the birthplace of {s}?"];
  const qEmployer = ["Which company does {s} work for?", "Who employs {s}?", "What is the employer of {s}?"];
  const qCountry = ["In which country is {s}?", "Which country is {s} located in?"];
  const qHq = ["Where is {s} headquartered?", "In which city are the headquarters of {s}?"];
  const qFounder = ["Who founded {s}?", "Who is the founder of {s}?"];
  const qHobby = ["What is the hobby of {s}?", "What does {s} enjoy in free time?"];
  const qRiver = ["Which river flows through {s}?", "On which river does {s} stand?"];
  for (const p of people) {
    add(p, "single", Q(qBirthCity, p.name), p.links.birthCity!.name, [p]);
    add(p, "single", Q(["In what year was {s} born?", "When was {s} born?"], p.name), p.attrs.birthYear!, [p]);
    add(p, "single", Q(["What is the profession of {s}?", "What does {s} do for a living?"], p.name), p.attrs.profession!, [p]);
    if (p.links.employer) add(p, "single", Q(qEmployer, p.name), p.links.employer.name, [p]);
    else add(p, "unanswerable", Q(qEmployer, p.name), null, [p]);
    if (p.attrs.hobby) add(p, "single", Q(qHobby, p.name), p.attrs.hobby, [p]);
    else add(p, "unanswerable", Q(qHobby, p.name), null, [p]);
    const city = p.links.birthCity!;
    add(p, "bridge", Q(["In which country was {s} born?", "Which country is {s} from by birth?"], p.name), city.links.country!.name, [p, city], [
      { query: `In which city was ${p.name} born?`, doc: p.id },
      { query: `In which country is ${city.name}?`, doc: city.id },
    ]);
    const co = p.links.employer;
    if (co) {
      add(p, "bridge", Q(["In which city is the company that {s} works for headquartered?", "Where is the employer of {s} headquartered?"], p.name), co.links.hq!.name, [p, co], [
        { query: `Which company does ${p.name} work for?`, doc: p.id },
        { query: `Where is ${co.name} headquartered?`, doc: co.id },
      ]);
      if (co.links.founder && co.links.founder !== p) {
        add(p, "bridge", Q(["Who founded the company that {s} works for?", "Who is the founder of the employer of {s}?"], p.name), co.links.founder.name, [p, co], [
          { query: `Which company does ${p.name} work for?`, doc: p.id },
          { query: `Who founded ${co.name}?`, doc: co.id },
        ]);
      }
    }
  }
  for (const c of cities) {
    add(c, "single", Q(qCountry, c.name), c.links.country!.name, [c]);
    add(c, "single", Q(["What is the population of {s}?", "How many people live in {s}?"], c.name), c.attrs.population!, [c]);
    add(c, "single", Q(["When was {s} founded?", "In what year was the city of {s} founded?"], c.name), c.attrs.cityFounded!, [c]);
    if (c.attrs.river) add(c, "single", Q(qRiver, c.name), c.attrs.river, [c]);
    else add(c, "unanswerable", Q(qRiver, c.name), null, [c]);
    const k = c.links.country!;
    if (k.links.capital && k.links.capital !== c) {
      add(c, "bridge", Q(["What is the capital of the country where {s} is located?", "Which city is the capital of the country that {s} belongs to?"], c.name), k.links.capital.name, [c, k], [
        { query: `In which country is ${c.name}?`, doc: c.id },
        { query: `What is the capital of ${k.name}?`, doc: k.id },
      ]);
    }
  }
  for (const co of companies) {
    add(co, "single", Q(qHq, co.name), co.links.hq!.name, [co]);
    add(co, "single", Q(["When was {s} established?", "In what year was {s} founded?"], co.name), co.attrs.companyFounded!, [co]);
    add(co, "single", Q(["In which industry does {s} operate?", "What is the business of {s}?"], co.name), co.attrs.industry!, [co]);
    const f = co.links.founder;
    if (f) add(co, "single", Q(qFounder, co.name), f.name, [co]);
    else add(co, "unanswerable", Q(qFounder, co.name), null, [co]);
    const hq = co.links.hq!;
    add(co, "bridge", Q(["In which country is {s} headquartered?", "Which country hosts the headquarters of {s}?"], co.name), hq.links.country!.name, [co, hq], [
      { query: `Where is ${co.name} headquartered?`, doc: co.id },
      { query: `In which country is ${hq.name}?`, doc: hq.id },
    ]);
    if (f) {
      add(co, "bridge", Q(["In which city was the founder of {s} born?", "Where was the founder of {s} born?"], co.name), f.links.birthCity!.name, [co, f], [
        { query: `Who founded ${co.name}?`, doc: co.id },
        { query: `In which city was ${f.name} born?`, doc: f.id },
      ]);
    }
  }
  for (const k of countries) {
    if (k.links.capital) add(k, "single", Q(["What is the capital of {s}?", "Which city is the capital of {s}?"], k.name), k.links.capital.name, [k]);
    add(k, "single", Q(["What is the currency of {s}?", "Which money is used in {s}?"], k.name), k.attrs.currency!, [k]);
    add(k, "single", Q(["What is the official language of {s}?", "Which language is spoken in {s}?"], k.name), k.attrs.language!, [k]);
    add(k, "single", Q(["What is the national animal of {s}?", "Which animal is the emblem of {s}?"], k.name), k.attrs.animal!, [k]);
  }
  const entitiesBySplit = { train: 0, val: 0, test: 0 };
  for (const e of all) entitiesBySplit[e.split]++;
  return {
    documents,
    questions,
    entities: { person: nPerson, city: nCity, company: nCompany, country: nCountry },
    entitiesBySplit,
  };
}
