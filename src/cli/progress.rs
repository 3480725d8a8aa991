//! Training progress on the terminal: a bar when stderr is a terminal, one line per epoch
//! always (so logs and CI show the run too).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::train::{EpochRecord, Progress};

pub struct Bar {
    bar: Option<ProgressBar>,
    prefix: String,
}

impl Bar {
    pub fn new(prefix: &str) -> Bar {
        Bar {
            bar: None,
            prefix: prefix.to_string(),
        }
    }

    fn println(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn start(&mut self, total_steps: u64) {
        if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(total_steps);
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} steps {msg} ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(self.prefix.clone());
            self.bar = Some(b);
        }
    }

    fn step(&mut self, epoch: usize, step: u64, loss: f32, active: f64, images_per_s: f64) {
        if let Some(b) = &self.bar {
            b.set_position(step);
            b.set_message(format!(
                "epoch {epoch} loss {loss:.4} active {:.0}% {images_per_s:.0} img/s",
                active * 100.0
            ));
        }
    }

    fn epoch(&mut self, r: &EpochRecord) {
        let val = r.val.map_or(String::new(), |v| {
            format!(
                " | val 1-NN acc {:.2}% bal {:.2}% F1 {:.3}",
                v.accuracy * 100.0,
                v.balanced_accuracy * 100.0,
                v.macro_f1
            )
        });
        self.println(&format!(
            "{}epoch {:>3} loss {:.4} active {:>3.0}% spread {:.3} lr {:.1e} {:.0} img/s {:.1}s{val}",
            self.prefix,
            r.epoch,
            r.loss,
            r.active * 100.0,
            r.spread,
            r.lr,
            r.images_per_s,
            r.seconds
        ));
    }

    fn warn(&mut self, msg: &str) {
        self.println(&format!("warning: {msg}"));
    }
}
