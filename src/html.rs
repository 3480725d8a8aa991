//! report.html: one self-contained page (pictures and thumbnails embedded as data URIs, no
//! script) that opens from disk. A person looks at what the model got wrong and why: the
//! confusion matrix links each off-diagonal cell to its images, and every misclassified image
//! is shown beside its nearest gallery images with their classes and distances.
//!
//! Markup contract (tests parse it): each mistake is a `div.mistake` with `data-image`,
//! `data-actual`, `data-predicted` (class names) and `data-fold`, inside `section#mistakes`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;

use crate::data::Dataset;
use crate::metric::scores::Confusion;
use crate::{Error, Result};

/// Side of the embedded thumbnails in pixels.
const THUMB: u32 = 64;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

fn data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// Thumbnails of a dataset's preprocessed images (what the network saw), each encoded once.
pub struct Thumbnails<'a> {
    data: &'a Dataset,
    cache: HashMap<usize, String>,
}

impl<'a> Thumbnails<'a> {
    pub fn new(data: &'a Dataset) -> Self {
        Thumbnails {
            data,
            cache: HashMap::new(),
        }
    }

    /// An `<img>` of image `i`.
    pub fn img(&mut self, i: usize, alt: &str) -> Result<String> {
        if !self.cache.contains_key(&i) {
            let full = crate::data::colour::input_to_image(self.data.image(i), self.data.side);
            let small = full.resize_exact(THUMB, THUMB, image::imageops::FilterType::Triangle);
            let mut png = Vec::new();
            small
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .map_err(|e| Error::Input(format!("encoding a thumbnail: {e}")))?;
            self.cache.insert(i, data_uri(&png));
        }
        Ok(format!(
            "<img src=\"{}\" width=\"{THUMB}\" height=\"{THUMB}\" alt=\"{}\">",
            self.cache[&i],
            esc(alt)
        ))
    }
}

/// Short names of a dataset's images: paths relative to the folder they all share (the
/// data folder), or `image N` for generated images.
pub fn image_names(data: &Dataset) -> Vec<String> {
    let parents: Vec<&Path> = data.paths.iter().filter_map(|p| p.parent()).collect();
    let mut root: Option<&Path> = parents.first().copied();
    for p in &parents {
        while let Some(r) = root {
            if p.starts_with(r) {
                break;
            }
            root = r.parent();
        }
    }
    (0..data.len())
        .map(|i| match (data.paths.get(i), root) {
            (Some(p), Some(r)) => p.strip_prefix(r).unwrap_or(p).display().to_string(),
            (Some(p), None) => p.display().to_string(),
            (None, _) => format!("image {i}"),
        })
        .collect()
}

/// A misclassified image as the page shows it.
pub struct PageMistake {
    pub image: usize,
    /// Cross-validation fold (None outside an evaluation).
    pub fold: Option<usize>,
    pub actual: usize,
    /// A class index, or `classes.len()` for unknown when the page's class list has it.
    pub predicted: usize,
    /// Nearest first.
    pub neighbours: Vec<PageNear>,
}

/// A gallery image beside a mistake.
pub struct PageNear {
    /// Its thumbnail, when the page has the image (a model keeps only embeddings).
    pub image: Option<usize>,
    pub name: String,
    pub class: usize,
    /// Squared distance in the embedding space.
    pub distance: f32,
}

/// A report page, built section by section.
pub struct Page {
    body: String,
    title: String,
}

impl Page {
    pub fn new(title: &str) -> Page {
        Page {
            body: format!("<h1>{}</h1>\n", esc(title)),
            title: title.to_string(),
        }
    }

    pub fn heading(&mut self, text: &str, id: &str) {
        let _ = writeln!(self.body, "<h2 id=\"{}\">{}</h2>", esc(id), esc(text));
    }

    pub fn para(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p>{}</p>", esc(text));
    }

    /// A table of text cells (escaped); the first row is the header.
    pub fn table(&mut self, header: &[String], rows: &[Vec<String>]) {
        self.body.push_str("<table>\n<tr>");
        for h in header {
            let _ = write!(self.body, "<th>{}</th>", esc(h));
        }
        self.body.push_str("</tr>\n");
        for r in rows {
            self.body.push_str("<tr>");
            for c in r {
                let _ = write!(self.body, "<td>{}</td>", esc(c));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }

    /// Markdown (report.md's tables and notes) rendered in place.
    pub fn markdown(&mut self, md: &str) {
        use pulldown_cmark::{Event, Options, Parser};
        // Class names and paths are text: markup in them is shown, never interpreted.
        let events = Parser::new_ext(md, Options::ENABLE_TABLES).map(|e| match e {
            Event::Html(s) | Event::InlineHtml(s) => Event::Text(s),
            e => e,
        });
        pulldown_cmark::html::push_html(&mut self.body, events);
    }

    /// A PNG written earlier (a plot), embedded.
    pub fn picture(&mut self, caption: &str, png: &Path) -> Result<()> {
        let bytes = std::fs::read(png).map_err(|source| Error::Io {
            path: png.display().to_string(),
            source,
        })?;
        let _ = writeln!(
            self.body,
            "<figure class=\"plot\"><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            data_uri(&bytes),
            esc(caption),
            esc(caption)
        );
        Ok(())
    }

    /// The confusion matrix (rows actual, columns predicted), each non-zero off-diagonal cell
    /// a link to its images in the mistakes section, then per-class precision / recall / F1.
    pub fn confusion(&mut self, classes: &[String], c: &Confusion) {
        self.body
            .push_str("<table class=\"confusion\">\n<tr><th>actual \\ predicted</th>");
        for name in classes {
            let _ = write!(self.body, "<th>{}</th>", esc(name));
        }
        self.body.push_str("</tr>\n");
        for (a, name) in classes.iter().enumerate() {
            let _ = write!(self.body, "<tr><th>{}</th>", esc(name));
            for p in 0..classes.len() {
                let n = c.get(a, p);
                let _ = match (a == p, n) {
                    (true, _) => write!(self.body, "<td class=\"hit\">{n}</td>"),
                    (false, 0) => write!(self.body, "<td>0</td>"),
                    (false, _) => write!(
                        self.body,
                        "<td class=\"miss\"><a href=\"#cell-{a}-{p}\">{n}</a></td>"
                    ),
                };
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
        let mut rows: Vec<Vec<String>> = c
            .class_scores()
            .iter()
            .enumerate()
            .map(|(k, s)| {
                vec![
                    classes[k].clone(),
                    format!("{:.3}", s.precision),
                    format!("{:.3}", s.recall),
                    format!("{:.3}", s.f1),
                    s.support.to_string(),
                ]
            })
            .collect();
        let (p, r, f) = c.macro_scores();
        rows.push(vec![
            "macro average".into(),
            format!("{p:.3}"),
            format!("{r:.3}"),
            format!("{f:.3}"),
            c.total().to_string(),
        ]);
        self.table(
            &["class", "precision", "recall", "F1", "support"].map(String::from),
            &rows,
        );
    }

    /// Every mistake, grouped by (actual, predicted) cell, beside its nearest gallery images.
    pub fn mistakes(
        &mut self,
        classes: &[String],
        names: &[String],
        mistakes: &[PageMistake],
        thumbs: &mut Thumbnails,
    ) -> Result<()> {
        self.body.push_str("<section id=\"mistakes\">\n");
        if mistakes.is_empty() {
            self.body
                .push_str("<p>No test image was misclassified.</p>\n");
        }
        let mut cells: Vec<(usize, usize)> =
            mistakes.iter().map(|m| (m.actual, m.predicted)).collect();
        cells.sort();
        cells.dedup();
        for (a, p) in cells {
            let of_cell: Vec<&PageMistake> = mistakes
                .iter()
                .filter(|m| (m.actual, m.predicted) == (a, p))
                .collect();
            let _ = writeln!(
                self.body,
                "<section class=\"cell\" id=\"cell-{a}-{p}\"><h3>{} called {} ({})</h3>",
                esc(&classes[a]),
                esc(&classes[p]),
                of_cell.len()
            );
            for m in of_cell {
                let name = &names[m.image];
                let fold = m
                    .fold
                    .map_or(String::new(), |f| format!("fold {}: ", f + 1));
                let _ = write!(
                    self.body,
                    "<div class=\"mistake\" data-image=\"{}\" data-actual=\"{}\" data-predicted=\"{}\" data-fold=\"{}\">\n<figure class=\"query\">{}<figcaption>{}<br>{}{} called {}</figcaption></figure>\n",
                    esc(name),
                    esc(&classes[a]),
                    esc(&classes[p]),
                    m.fold.map_or(String::new(), |f| (f + 1).to_string()),
                    thumbs.img(m.image, name)?,
                    esc(name),
                    esc(&fold),
                    esc(&classes[a]),
                    esc(&classes[p])
                );
                for n in &m.neighbours {
                    let kind = if n.class == a { "same" } else { "other" };
                    let img = match n.image {
                        Some(j) => thumbs.img(j, &n.name)?,
                        None => format!(
                            "<span class=\"noimg\" style=\"width:{THUMB}px;height:{THUMB}px\">{}</span>",
                            esc(&classes[n.class])
                        ),
                    };
                    let _ = writeln!(
                        self.body,
                        "<figure class=\"near {kind}\">{img}<figcaption>{}<br>d = {:.4}<br><small>{}</small></figcaption></figure>",
                        esc(&classes[n.class]),
                        n.distance,
                        esc(&n.name)
                    );
                }
                self.body.push_str("</div>\n");
            }
            self.body.push_str("</section>\n");
        }
        self.body.push_str("</section>\n");
        Ok(())
    }

    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
            esc(&self.title),
            self.body
        )
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;max-width:90em;color:#222}\
table{border-collapse:collapse;margin:.8em 0}th,td{border:1px solid #bbb;padding:.2em .6em;text-align:right}\
th:first-child,td:first-child{text-align:left}td.hit{background:#e6f2e6}td.miss{background:#f7dede}\
td.miss a{font-weight:bold;color:#a00}figure{display:inline-block;margin:.3em;vertical-align:top;\
text-align:center;font-size:.8em;max-width:9em;overflow-wrap:anywhere}figure.plot{max-width:none}\
figure.plot img{max-width:100%}div.mistake{border-top:1px solid #ddd;padding:.4em 0}\
figure.query img{outline:3px solid #a00}figure.same img{outline:2px solid #393}\
figure.other img{outline:2px solid #c60}section.cell:target{background:#fff8d0}\
span.noimg{display:inline-flex;align-items:center;justify-content:center;background:#eee;\
outline:2px solid #999;font-size:.8em}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_names() {
        assert_eq!(esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }

    #[test]
    fn image_names_are_relative_to_the_shared_folder() {
        let data = Dataset {
            side: 1,
            channels: 1,
            images: vec![0.0; 3],
            labels: vec![0, 1, 1],
            classes: vec!["a".into(), "b".into()],
            paths: vec![
                "/d/set/a/x.png".into(),
                "/d/set/b/y.png".into(),
                "/d/set/b/sub/z.png".into(),
            ],
        };
        assert_eq!(image_names(&data), ["a/x.png", "b/y.png", "b/sub/z.png"]);
    }
}
