//! A small TopoJSON reader (the format of Natural Earth's `world-atlas`):
//! shared arcs, delta-encoded and quantized when the topology has a
//! `transform`, stitched into the rings of each polygon. Only what the map
//! needs: `Polygon` and `MultiPolygon` geometries of `GeometryCollection`s.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

/// A position: longitude, latitude (degrees) once decoded.
pub type Point = [f64; 2];
/// A closed ring of positions (the first repeated at the end).
pub type Ring = Vec<Point>;
/// An outer ring followed by its holes.
pub type Polygon = Vec<Ring>;

/// One feature of a collection, its rings decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// The geometry's `id` as text (world-atlas: the ISO 3166-1 numeric code).
    pub id: Option<String>,
    /// `properties.name`, when present.
    pub name: Option<String>,
    pub polygons: Vec<Polygon>,
    /// The arcs the shape's rings use (index, sign dropped): two shapes that
    /// share one share a border.
    pub arcs: BTreeSet<usize>,
}

/// A decoded topology: its arcs in positions, and each named collection's shapes.
#[derive(Debug, Clone)]
pub struct Topology {
    pub arcs: Vec<Vec<Point>>,
    pub objects: BTreeMap<String, Vec<Shape>>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    arcs: Vec<Vec<Vec<f64>>>,
    transform: Option<Transform>,
    objects: BTreeMap<String, RawObject>,
}

/// `scale` and `translate` of a quantized topology.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct Transform {
    pub scale: [f64; 2],
    pub translate: [f64; 2],
}

#[derive(Deserialize)]
struct RawObject {
    #[serde(default)]
    geometries: Vec<RawGeometry>,
}

#[derive(Deserialize)]
struct RawGeometry {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    arcs: Value,
    #[serde(default)]
    id: Value,
    #[serde(default)]
    properties: Value,
}

/// Decodes one arc: with a transform, the positions are quantized and each
/// after the first is the difference from the one before.
pub fn decode_arc(positions: &[Vec<f64>], transform: Option<&Transform>) -> Result<Vec<Point>, String> {
    let mut out = Vec::with_capacity(positions.len());
    let (mut x, mut y) = (0.0, 0.0);
    for p in positions {
        let (&px, &py) = match (p.first(), p.get(1)) {
            (Some(px), Some(py)) => (px, py),
            _ => return Err("a position with fewer than two numbers".to_owned()),
        };
        match transform {
            Some(t) => {
                x += px;
                y += py;
                out.push([x * t.scale[0] + t.translate[0], y * t.scale[1] + t.translate[1]]);
            }
            None => out.push([px, py]),
        }
    }
    Ok(out)
}

/// The ring made of the arcs `indexes` (a negative index `!i` is arc `i`
/// reversed); consecutive arcs share their end and start, kept once.
pub fn ring(arcs: &[Vec<Point>], indexes: &[i64]) -> Result<Ring, String> {
    let mut out: Ring = Vec::new();
    for &index in indexes {
        let (i, reversed) = if index < 0 { (!index, true) } else { (index, false) };
        let arc = usize::try_from(i).ok().and_then(|i| arcs.get(i)).ok_or_else(|| format!("no arc {index}"))?;
        let skip = usize::from(!out.is_empty());
        if reversed {
            out.extend(arc.iter().rev().skip(skip));
        } else {
            out.extend(arc.iter().skip(skip));
        }
    }
    Ok(out)
}

fn indexes(value: &Value) -> Result<Vec<i64>, String> {
    let list = value.as_array().ok_or("a ring is not a list of arc indexes")?;
    list.iter().map(|v| v.as_i64().ok_or_else(|| format!("arc index {v} is not an integer"))).collect()
}

fn polygon(arcs: &[Vec<Point>], value: &Value, used: &mut BTreeSet<usize>) -> Result<Polygon, String> {
    let rings = value.as_array().ok_or("a polygon is not a list of rings")?;
    rings
        .iter()
        .map(|r| {
            let idx = indexes(r)?;
            used.extend(idx.iter().map(|&i| if i < 0 { !i } else { i } as usize));
            ring(arcs, &idx)
        })
        .collect()
}

/// Parses and decodes a TopoJSON text.
pub fn parse(text: &str) -> Result<Topology, String> {
    let raw: Raw = serde_json::from_str(text).map_err(|e| format!("not TopoJSON: {e}"))?;
    if raw.kind != "Topology" {
        return Err(format!("type {:?}, not Topology", raw.kind));
    }
    let arcs: Vec<Vec<Point>> =
        raw.arcs.iter().map(|a| decode_arc(a, raw.transform.as_ref())).collect::<Result<_, _>>()?;
    let mut objects = BTreeMap::new();
    for (name, object) in raw.objects {
        let mut shapes = Vec::new();
        for g in object.geometries {
            let mut used = BTreeSet::new();
            let polygons = match g.kind.as_deref() {
                Some("Polygon") => vec![polygon(&arcs, &g.arcs, &mut used)?],
                Some("MultiPolygon") => g
                    .arcs
                    .as_array()
                    .ok_or("a multipolygon is not a list of polygons")?
                    .iter()
                    .map(|p| polygon(&arcs, p, &mut used))
                    .collect::<Result<_, _>>()?,
                // Points, lines and null geometries have no area to draw.
                _ => continue,
            };
            let id = match &g.id {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let name = g.properties.get("name").and_then(Value::as_str).map(str::to_owned);
            shapes.push(Shape { id, name, polygons, arcs: used });
        }
        objects.insert(name, shapes);
    }
    Ok(Topology { arcs, objects })
}

/// The signed area (shoelace, in square degrees) and centroid of a ring.
pub fn area_centroid(ring: &[Point]) -> (f64, Point) {
    let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for w in ring.windows(2) {
        let cross = w[0][0] * w[1][1] - w[1][0] * w[0][1];
        a += cross;
        cx += (w[0][0] + w[1][0]) * cross;
        cy += (w[0][1] + w[1][1]) * cross;
    }
    if a.abs() < 1e-12 {
        let n = ring.len().max(1) as f64;
        let mean = ring.iter().fold([0.0, 0.0], |s, p| [s[0] + p[0], s[1] + p[1]]);
        return (0.0, [mean[0] / n, mean[1] / n]);
    }
    (a / 2.0, [cx / (3.0 * a), cy / (3.0 * a)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two unit squares side by side sharing the arc x = 1, quantized.
    const TWO_SQUARES: &str = r#"{
        "type": "Topology",
        "transform": {"scale": [0.5, 0.25], "translate": [10, 20]},
        "arcs": [
            [[2, 0], [0, 4]],
            [[2, 4], [-2, 0], [0, -4], [2, 0]],
            [[2, 0], [2, 0], [0, 4], [-2, 0]]
        ],
        "objects": {"countries": {"type": "GeometryCollection", "geometries": [
            {"type": "Polygon", "arcs": [[0, 1]], "id": "001", "properties": {"name": "West"}},
            {"type": "MultiPolygon", "arcs": [[[2, -1]]], "id": 2, "properties": {"name": "East"}},
            {"type": null}
        ]}}
    }"#;

    #[test]
    fn a_quantized_arc_decodes_by_deltas_and_the_transform() {
        let t = Transform { scale: [0.5, 0.25], translate: [10.0, 20.0] };
        let arc = decode_arc(&[vec![2.0, 4.0], vec![1.0, -1.0], vec![3.0, 2.0]], Some(&t)).unwrap();
        assert_eq!(arc, vec![[11.0, 21.0], [11.5, 20.75], [13.0, 21.25]]);
        // Without a transform the positions are absolute.
        assert_eq!(decode_arc(&[vec![1.5, 2.5], vec![1.0, 1.0]], None).unwrap(), vec![[1.5, 2.5], [1.0, 1.0]]);
        assert!(decode_arc(&[vec![1.0]], None).is_err());
    }

    #[test]
    fn rings_stitch_arcs_forwards_and_reversed() {
        let topology = parse(TWO_SQUARES).unwrap();
        let shapes = &topology.objects["countries"];
        assert_eq!(shapes.len(), 2, "the null geometry is left out");
        let west = &shapes[0];
        assert_eq!((west.id.as_deref(), west.name.as_deref()), (Some("001"), Some("West")));
        // x = 10 + 0.5 q, y = 20 + 0.25 q: the square from (10, 20) to (11, 21).
        assert_eq!(west.polygons[0][0], vec![[11.0, 20.0], [11.0, 21.0], [10.0, 21.0], [10.0, 20.0], [11.0, 20.0]]);
        let east = &shapes[1];
        assert_eq!(east.id.as_deref(), Some("2"));
        assert_eq!(east.polygons[0][0], vec![[11.0, 20.0], [12.0, 20.0], [12.0, 21.0], [11.0, 21.0], [11.0, 20.0]]);
        // The shared border is arc 0, used by both.
        assert_eq!(west.arcs.intersection(&east.arcs).copied().collect::<Vec<_>>(), vec![0]);
        let (area, centroid) = area_centroid(&west.polygons[0][0]);
        assert!(
            (area.abs() - 1.0).abs() < 1e-9 && (centroid[0] - 10.5).abs() < 1e-9 && (centroid[1] - 20.5).abs() < 1e-9
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(parse("{}").is_err());
        assert!(parse(r#"{"type": "FeatureCollection", "arcs": [], "objects": {}}"#).is_err());
        let missing_arc = r#"{"type": "Topology", "arcs": [], "objects": {"c": {"geometries": [{"type": "Polygon", "arcs": [[0]]}]}}}"#;
        assert!(parse(missing_arc).is_err());
    }
}
