//! Compiling and evaluating profile expressions with the `cel` crate (the
//! cel-rust project; `cel-interpreter` is its former name).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

use cel::common::ast::{EntryExpr, Expr, LiteralValue};
use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelString};
use cel::common::value::Val;
use cel::{Context, Env, ExecutionError, IdedExpr, Program, Value};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::context::{GoodsItem, TransportContext};

/// An expression refused at compile, with where: `line` and `column` count
/// from 1 (columns in characters), `offset` is the 0-based character offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompileError {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for CompileError {}

/// Why an expression gave no verdict on one transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalError {
    pub message: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

/// Longest expression accepted, in characters: profiles are written by hand.
pub const EXPRESSION_CHARS_MAX: usize = 4_000;

/// The standard environment with our `matches`: the crate's own compiles
/// the pattern on every call (about 300 µs for a case-insensitive
/// alternation), ours once per thread.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        cel::add_overload!(env, fn matches: (CelString<'_>, CelString<'_>) -> Result<CelBool>, id = "matches")
            .expect("cel's regex feature is off, so matches is ours alone");
        cel::add_member_overload!(env, fn matches: (CelString<'_>, CelString<'_>) -> Result<CelBool>)
            .expect("cel's regex feature is off, so matches is ours alone");
        Arc::new(env)
    })
}

/// Patterns are an officer's text: bound what one may cost.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
const REGEX_CACHE_MAX: usize = 256;

fn regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build()
}

fn matches(this: &CelString<'_>, pattern: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    thread_local! {
        static CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
    }
    CACHE.with_borrow_mut(|cache| {
        if !cache.contains_key(pattern.inner()) {
            let compiled = regex(pattern.inner())
                .map_err(|e| ExecutionError::function_error("matches", format!("not a valid regex: {e}")))?;
            if cache.len() >= REGEX_CACHE_MAX {
                cache.clear();
            }
            cache.insert(pattern.inner().to_owned(), compiled);
        }
        Ok(CelBool::from(cache[pattern.inner()].is_match(this.inner())))
    })
}

/// A compiled expression, shareable between threads.
#[derive(Debug, Clone)]
pub struct Compiled(Arc<Program>);

/// Compiles `expression`, refusing syntax errors and variables that are not
/// fields of the transport context (a typo would otherwise only show as an
/// error on every transport).
pub fn compile(expression: &str) -> Result<Compiled, CompileError> {
    let chars = expression.chars().count();
    if chars > EXPRESSION_CHARS_MAX {
        return Err(at_offset(
            expression,
            EXPRESSION_CHARS_MAX,
            format!("the expression is longer than {EXPRESSION_CHARS_MAX} characters"),
        ));
    }
    if expression.trim().is_empty() {
        return Err(at_offset(expression, 0, "the expression is empty".into()));
    }
    // The parser is generated code: a panic on odd input must not take the caller down.
    let parsed = std::panic::catch_unwind(|| env().compile(expression))
        .map_err(|_| at_offset(expression, 0, "the expression could not be parsed".into()))?;
    let program = parsed.map_err(|errors| match errors.errors.first() {
        Some(e) => at_line_column(expression, e.pos.0, e.pos.1, e.msg.clone()),
        None => at_offset(expression, 0, "the expression could not be parsed".into()),
    })?;
    let mut unknown = Vec::new();
    free_identifiers(program.expression(), &mut Vec::new(), &mut unknown);
    let fields: HashSet<&str> = TransportContext::field_names().iter().copied().collect();
    // The first unknown name in the source, so the error points where the reader looks first.
    let first = unknown
        .into_iter()
        .filter(|(name, _)| !fields.contains(name.as_str()))
        .filter_map(|(name, id)| {
            program.source_info().offset_for(id).map(|(start, _)| (char_offset(expression, start as usize), name))
        })
        .min();
    if let Some((offset, name)) = first {
        return Err(at_offset(
            expression,
            offset,
            format!("undeclared reference to '{name}': not a field of the transport context"),
        ));
    }
    let mut bad_patterns = Vec::new();
    literal_patterns(program.expression(), &mut bad_patterns);
    let first = bad_patterns
        .into_iter()
        .filter_map(|(id, message)| {
            program.source_info().offset_for(id).map(|(start, _)| (char_offset(expression, start as usize), message))
        })
        .min();
    if let Some((offset, message)) = first {
        return Err(at_offset(expression, offset, message));
    }
    Ok(Compiled(Arc::new(program)))
}

/// Literal patterns of `matches` calls that do not compile, with their node ids.
fn literal_patterns(e: &IdedExpr, out: &mut Vec<(u64, String)>) {
    match &e.expr {
        Expr::Call(call) => {
            if call.func_name == "matches"
                && let Some(pattern) = call.args.last()
                && let Expr::Literal(LiteralValue::String(text)) = &pattern.expr
                && let Err(err) = regex(text.inner())
            {
                out.push((pattern.id, format!("not a valid regex: {err}")));
            }
            call.target.iter().for_each(|t| literal_patterns(t, out));
            call.args.iter().for_each(|a| literal_patterns(a, out));
        }
        Expr::Comprehension(c) => {
            for part in [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                literal_patterns(part, out);
            }
        }
        Expr::List(list) => list.elements.iter().for_each(|x| literal_patterns(x, out)),
        Expr::Select(select) => literal_patterns(&select.operand, out),
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(entry) = &entry.expr {
                    literal_patterns(&entry.key, out);
                    literal_patterns(&entry.value, out);
                }
            }
        }
        _ => {}
    }
}

/// Identifiers not bound by an enclosing comprehension, with their node ids.
fn free_identifiers(e: &IdedExpr, bound: &mut Vec<String>, out: &mut Vec<(String, u64)>) {
    match &e.expr {
        // `@` names are the macros' own accumulators.
        Expr::Ident(name) if !name.starts_with('@') && !bound.contains(name) => out.push((name.clone(), e.id)),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                free_identifiers(target, bound, out);
            }
            for arg in &call.args {
                free_identifiers(arg, bound, out);
            }
        }
        Expr::Comprehension(c) => {
            free_identifiers(&c.iter_range, bound, out);
            free_identifiers(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                free_identifiers(part, bound, out);
            }
            bound.truncate(depth);
        }
        Expr::List(list) => {
            for element in &list.elements {
                free_identifiers(element, bound, out);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                match &entry.expr {
                    EntryExpr::StructField(field) => free_identifiers(&field.value, bound, out),
                    EntryExpr::MapEntry(entry) => {
                        free_identifiers(&entry.key, bound, out);
                        free_identifiers(&entry.value, bound, out);
                    }
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(field) = &entry.expr {
                    free_identifiers(&field.value, bound, out);
                }
            }
        }
        Expr::Select(select) => free_identifiers(&select.operand, bound, out),
        _ => {}
    }
}

/// The parser's node offsets count bytes; errors count characters.
fn char_offset(source: &str, byte: usize) -> usize {
    source.char_indices().take_while(|&(i, _)| i < byte).count()
}

fn at_offset(source: &str, offset: usize, message: String) -> CompileError {
    let (mut line, mut column) = (1, 1);
    for c in source.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    CompileError { line, column, offset, message }
}

fn at_line_column(source: &str, line: isize, column: isize, message: String) -> CompileError {
    let line = line.max(1) as usize;
    let column = column.max(1) as usize;
    let mut offset = 0;
    for (i, text) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            offset += (column - 1).min(text.chars().count());
            return CompileError { line, column, offset, message };
        }
        offset += text.chars().count();
    }
    CompileError { line, column, offset, message }
}

/// One transport's context as CEL variables: made once, then every profile
/// is evaluated against it. Strings are borrowed from the context, not copied.
pub struct Bindings<'a> {
    context: Context<'a, 'a>,
}

type Boxed<'a> = Box<dyn Val + 'a>;

fn text(v: &str) -> Boxed<'_> {
    Box::new(CelString::from(v))
}

fn int(v: i64) -> Boxed<'static> {
    Box::new(CelInt::from(v))
}

fn double(v: f64) -> Boxed<'static> {
    Box::new(CelDouble::from(v))
}

fn texts(v: &[String]) -> Boxed<'_> {
    Box::new(CelList::from(v.iter().map(|x| text(x)).collect::<Vec<_>>()))
}

fn goods_item(g: &GoodsItem) -> Boxed<'_> {
    // Destructured in full, so a new field cannot be forgotten here.
    let GoodsItem {
        consignment,
        hs6,
        hs4,
        hs2,
        hs6_description,
        hs4_description,
        hs2_description,
        description,
        packages,
        gross_mass_kg,
        value,
        currency,
        value_per_kg,
        consignor_country,
        consignee_country,
    } = g;
    let fields: [(&str, Boxed<'_>); 15] = [
        ("consignment", int(*consignment)),
        ("hs6", text(hs6)),
        ("hs4", text(hs4)),
        ("hs2", text(hs2)),
        ("hs6_description", text(hs6_description)),
        ("hs4_description", text(hs4_description)),
        ("hs2_description", text(hs2_description)),
        ("description", text(description)),
        ("packages", int(*packages)),
        ("gross_mass_kg", double(*gross_mass_kg)),
        ("value", double(*value)),
        ("currency", text(currency)),
        ("value_per_kg", double(*value_per_kg)),
        ("consignor_country", text(consignor_country)),
        ("consignee_country", text(consignee_country)),
    ];
    let map: HashMap<CelMapKey<'_>, Boxed<'_>> = fields.into_iter().map(|(k, v)| (CelMapKey::from(k), v)).collect();
    Box::new(CelMap::from(map))
}

impl<'a> Bindings<'a> {
    pub fn new(t: &'a TransportContext) -> Bindings<'a> {
        let TransportContext {
            guarantee,
            holder,
            holder_country,
            holder_transports,
            holder_irregularities,
            holder_irregularity_rate,
            country,
            office,
            operation,
            territory,
            operation_countries,
            itinerary,
            previous_countries,
            next_countries,
            previous_country,
            next_country,
            departure_country,
            destination_country,
            vehicle_country,
            vehicle_registration,
            seals,
            weekday,
            hour,
            date,
            declaration_version,
            amendments,
            amendments_requested,
            goods,
            goods_count,
            consignments,
            hs6,
            hs4,
            hs2,
            goods_description,
            consignor_countries,
            consignee_countries,
            total_gross_mass_kg,
            total_packages,
            total_value,
            value_currency,
            value_per_kg,
        } = t;
        let variables: [(&str, Boxed<'a>); 41] = [
            ("guarantee", text(guarantee)),
            ("holder", text(holder)),
            ("holder_country", text(holder_country)),
            ("holder_transports", int(*holder_transports)),
            ("holder_irregularities", int(*holder_irregularities)),
            ("holder_irregularity_rate", double(*holder_irregularity_rate)),
            ("country", text(country)),
            ("office", text(office)),
            ("operation", int(*operation)),
            ("territory", text(territory)),
            ("operation_countries", texts(operation_countries)),
            ("itinerary", texts(itinerary)),
            ("previous_countries", texts(previous_countries)),
            ("next_countries", texts(next_countries)),
            ("previous_country", text(previous_country)),
            ("next_country", text(next_country)),
            ("departure_country", text(departure_country)),
            ("destination_country", text(destination_country)),
            ("vehicle_country", text(vehicle_country)),
            ("vehicle_registration", text(vehicle_registration)),
            ("seals", int(*seals)),
            ("weekday", int(*weekday)),
            ("hour", int(*hour)),
            ("date", text(date)),
            ("declaration_version", int(*declaration_version)),
            ("amendments", int(*amendments)),
            ("amendments_requested", int(*amendments_requested)),
            ("goods", Box::new(CelList::from(goods.iter().map(goods_item).collect::<Vec<_>>()))),
            ("goods_count", int(*goods_count)),
            ("consignments", int(*consignments)),
            ("hs6", texts(hs6)),
            ("hs4", texts(hs4)),
            ("hs2", texts(hs2)),
            ("goods_description", text(goods_description)),
            ("consignor_countries", texts(consignor_countries)),
            ("consignee_countries", texts(consignee_countries)),
            ("total_gross_mass_kg", double(*total_gross_mass_kg)),
            ("total_packages", int(*total_packages)),
            ("total_value", double(*total_value)),
            ("value_currency", text(value_currency)),
            ("value_per_kg", double(*value_per_kg)),
        ];
        let mut context = Context::with_env(Arc::clone(env()));
        for (name, value) in variables {
            context.add_variable_as_val(name, value);
        }
        Bindings { context }
    }
}

impl fmt::Debug for Bindings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bindings")
    }
}

impl Compiled {
    /// The verdict on one transport: a result that is not a bool is an error,
    /// never a match.
    pub fn evaluate(&self, bindings: &Bindings<'_>) -> Result<bool, EvalError> {
        match self.0.execute(&bindings.context) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(EvalError { message: format!("the expression gave {:?}, not a bool", other.type_of()) }),
            Err(e) => Err(EvalError { message: e.to_string() }),
        }
    }
}

/// What an expression would have done on a set of past transports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// Transports it matched (before any selection percentage).
    pub matched: usize,
    pub evaluated: usize,
    /// Transports it gave no verdict on.
    pub errors: usize,
    /// The first few distinct error messages, to fix the expression.
    pub error_samples: Vec<String>,
}

/// How many of `contexts` (e.g. the last N transports, stored) `expression`
/// matches.
pub fn preview(expression: &str, contexts: &[TransportContext]) -> Result<Preview, CompileError> {
    const SAMPLES: usize = 5;
    let compiled = compile(expression)?;
    let mut preview = Preview::default();
    for context in contexts {
        preview.evaluated += 1;
        match compiled.evaluate(&Bindings::new(context)) {
            Ok(true) => preview.matched += 1,
            Ok(false) => {}
            Err(e) => {
                preview.errors += 1;
                if preview.error_samples.len() < SAMPLES && !preview.error_samples.contains(&e.message) {
                    preview.error_samples.push(e.message);
                }
            }
        }
    }
    Ok(preview)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::context;

    fn eval(expression: &str) -> Result<bool, EvalError> {
        compile(expression).unwrap().evaluate(&Bindings::new(&context()))
    }

    #[test]
    fn expressions_see_every_kind_of_field() {
        for expression in [
            r#""2402" in hs4"#,
            r#"goods.exists(g, g.hs2 == "24" && g.value_per_kg < 10.0)"#,
            r#"goods.exists(g, g.hs4_description.contains("cigarettes"))"#,
            r#"goods_description.matches("(?i)cigaret")"#,
            r#"previous_country == "BG" && "TR" in previous_countries && next_country == "HU""#,
            r#"holder_irregularity_rate > 0.2 && holder_transports >= 10"#,
            r#"weekday == 1 && hour >= 14 && hour < 15"#,
            r#"vehicle_country == "TR" && territory == "EU" && operation == 2"#,
            r#"total_value / total_gross_mass_kg == value_per_kg"#,
            r#""CN" in consignor_countries && size(goods) == 3"#,
            r#"amendments == 0 && office.startsWith("RO")"#,
        ] {
            assert_eq!(eval(expression), Ok(true), "{expression}");
        }
        assert_eq!(eval(r#""8704" in hs4"#), Ok(false));
    }

    /// The examples of docs/risk.md's context table compile and give a bool.
    #[test]
    fn the_documented_examples_evaluate() {
        let doc = include_str!("../../../../docs/risk.md");
        let section = doc.split("## Transport context").nth(1).unwrap().split("\n## ").next().unwrap();
        let mut seen = 0;
        for row in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let Some(example) = cells.get(3).and_then(|c| c.trim_end_matches(" |").strip_prefix('`')) else {
                continue;
            };
            let example = example.strip_suffix('`').unwrap().replace("\\|", "|");
            assert!(eval(&example).is_ok(), "{example}: {:?}", eval(&example));
            seen += 1;
        }
        assert!(seen >= 35, "{seen}");
    }

    #[test]
    fn every_field_is_bound() {
        for name in TransportContext::field_names() {
            assert_eq!(eval(&format!("{name} == {name}")), Ok(true), "{name}");
        }
        let c = serde_json::to_value(context()).unwrap();
        for key in c["goods"][0].as_object().unwrap().keys() {
            assert_eq!(eval(&format!("goods[0].{key} == goods[0].{key}")), Ok(true), "{key}");
        }
    }

    #[test]
    fn an_int_literal_compares_with_a_double_field() {
        assert_eq!(eval("total_value > 1000"), Ok(true));
        assert_eq!(eval("value_per_kg == 7"), Ok(true));
    }

    #[test]
    fn a_non_bool_result_is_an_error_not_a_match() {
        let e = eval("total_value").unwrap_err();
        assert!(e.message.contains("not a bool"), "{e}");
        assert!(eval(r#"goods.exists(g, g.no_such_field == 1)"#).is_err());
    }

    #[test]
    fn a_syntax_error_reports_its_line_and_column() {
        let e = compile("total_value > 1000 &&\n  (hs4 ==").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert_eq!((e.line, e.column, e.offset), (2, 10, 31), "{e:?}");
        let e = compile(r#""é" == > 1"#).unwrap_err();
        assert_eq!((e.line, e.column, e.offset), (1, 8, 7), "{e:?}");
        let e = compile("total_value > > 3").unwrap_err();
        assert_eq!((e.line, e.column, e.offset), (1, 15, 14), "{e:?}");
    }

    #[test]
    fn an_unknown_variable_is_refused_where_it_is_written() {
        let e = compile("total_value > 1 && totl_mass > 2").unwrap_err();
        assert_eq!((e.line, e.column, e.offset), (1, 20, 19), "{e:?}");
        assert!(e.message.contains("totl_mass"));
        // Positions count characters, not bytes.
        let e = compile(r#""é" == "é" && nope"#).unwrap_err();
        assert_eq!((e.column, e.offset), (15, 14), "{e:?}");
        // Loop variables of macros are not fields, and are accepted.
        assert!(compile("goods.all(g, g.gross_mass_kg > 0.0)").is_ok());
        let e = compile("goods.all(g, h.gross_mass_kg > 0.0)").unwrap_err();
        assert_eq!(e.column, 14, "{e:?}");
    }

    #[test]
    fn matches_works_both_ways_and_a_bad_literal_pattern_is_refused_where_it_is() {
        assert_eq!(eval(r#"goods_description.matches("(?i)CIGAR")"#), Ok(true));
        assert_eq!(eval(r#"matches(goods_description, "^Used")"#), Ok(true));
        assert_eq!(eval(r#"goods_description.matches("^Cigar")"#), Ok(false));
        let e = compile(
            r#"hs2 == [] ||
 goods_description.matches("(unclosed")"#,
        )
        .unwrap_err();
        assert_eq!((e.line, e.column, e.offset), (2, 28, 40), "{e:?}");
        assert!(e.message.contains("regex"), "{e:?}");
        // A pattern computed at run time fails there, as an evaluation error.
        assert!(eval(r#"goods_description.matches(goods_description + "(")"#).is_err());
    }

    #[test]
    fn empty_and_overlong_expressions_are_refused() {
        assert_eq!(compile("  ").unwrap_err().offset, 0);
        let long = "true && ".repeat(EXPRESSION_CHARS_MAX / 8 + 1) + "true";
        assert_eq!(compile(&long).unwrap_err().offset, EXPRESSION_CHARS_MAX);
    }

    #[test]
    fn preview_counts_matches_and_errors() {
        let mut cheap = context();
        cheap.total_value = 10.0;
        let mut broken = context();
        broken.goods.clear();
        let contexts = vec![context(), cheap, broken];
        let p = preview("total_value > 1000.0 && goods[0].hs2 == '87'", &contexts).unwrap();
        assert_eq!((p.matched, p.evaluated, p.errors), (1, 3, 1), "{p:?}");
        assert_eq!(p.error_samples.len(), 1);
        assert!(preview("total_value >", &contexts).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "(".repeat(2_000) + "true" + &")".repeat(2_000);
        assert!(compile(&deep).is_err());
        let deep = "!".repeat(3_999) + "true";
        let _ = compile(&deep);
        let deep = "[".repeat(1_500) + &"]".repeat(1_500) + " == []";
        let _ = compile(&deep);
    }

    fn check_position(source: &str, e: &CompileError) {
        assert!(e.offset <= source.chars().count(), "{e:?}");
        assert!(e.line >= 1 && e.column >= 1, "{e:?}");
        assert!(!e.message.is_empty());
        // Line and column name the same character as the offset.
        let (line, column) = {
            let before: String = source.chars().take(e.offset).collect();
            (before.matches('\n').count() + 1, before.rsplit('\n').next().unwrap_or("").chars().count() + 1)
        };
        if e.offset < source.chars().count() {
            assert_eq!((line, column), (e.line, e.column), "{e:?} in {source:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn compile_never_panics_on_any_text(source in "\\PC{0,200}") {
            if let Err(e) = compile(&source) {
                check_position(&source, &e);
            }
        }

        /// Fragments of real expressions glued at random reach deeper into
        /// the parser than arbitrary text does.
        #[test]
        fn compile_never_panics_on_expression_fragments(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "hs4", "goods", ".exists(", "g", ",", "g.hs2", " == ", "\"24\"", " && ", " || ", "(", ")",
                "[", "]", "!", " in ", "1", "2.5", "-", "size(", "'x'", ".matches(", "\n", "?", ":", "{", "}",
                "null", "true", "é", "\"", "\\", "total_value", " > ", ".", "@", "#",
            ]), 0..40)
        ) {
            let source: String = parts.concat();
            if let Err(e) = compile(&source) {
                check_position(&source, &e);
            }
        }
    }
}
