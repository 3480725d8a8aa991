//! Typed uniform blocks. Every kernel's WGSL `struct Params` has a `#[repr(C)]` Pod twin,
//! declared with `uniform!` beside the kernel's wrapper, which also records its fields. The
//! pipeline cache reads each shader's block with naga, and a dispatch is refused unless the
//! struct's fields (names and scalar types, in order) are the shader's: a field added,
//! dropped or swapped on one side is an error naming both, not a kernel reading garbage.

use crate::{Error, Result};

/// A kernel's uniform block as the shader declares it: 32-bit fields in order.
pub trait Uniform: bytemuck::Pod {
    /// (name, WGSL scalar type) of each field, in order.
    const FIELDS: &'static [(&'static str, &'static str)];
}

/// Declares a uniform block: a `#[repr(C)]` Pod struct of `u32` / `f32` fields that
/// implements [`Uniform`] with the fields' names and types.
macro_rules! uniform {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident: $ty:ident),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $(pub $field: $ty),*
        }

        impl $crate::gpu::uniform::Uniform for $name {
            const FIELDS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($field), stringify!($ty))),*];
        }
    };
}
pub(crate) use uniform;

/// The fields of shader `name`'s uniform block (the `var<uniform>` at group 0, binding 0) as
/// (name, WGSL scalar type); empty when it has none.
pub fn wgsl_params(name: &str, src: &str) -> Result<Vec<(String, String)>> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| Error::Gpu(format!("shaders/{name}.wgsl: {}", e.emit_to_string(src))))?;
    let block = module.global_variables.iter().find(|(_, v)| {
        v.space == naga::AddressSpace::Uniform
            && v.binding
                == Some(naga::ResourceBinding {
                    group: 0,
                    binding: 0,
                })
    });
    let Some((_, var)) = block else {
        return Ok(Vec::new());
    };
    let naga::TypeInner::Struct { members, .. } = &module.types[var.ty].inner else {
        return Err(Error::Gpu(format!(
            "shaders/{name}.wgsl: the uniform block is not a struct"
        )));
    };
    Ok(members
        .iter()
        .map(|m| {
            let ty = match &module.types[m.ty].inner {
                naga::TypeInner::Scalar(s) => match (s.kind, s.width) {
                    (naga::ScalarKind::Uint, 4) => "u32",
                    (naga::ScalarKind::Float, 4) => "f32",
                    (naga::ScalarKind::Sint, 4) => "i32",
                    _ => "other scalar",
                },
                _ => "not a scalar",
            };
            (m.name.clone().unwrap_or_default(), ty.to_string())
        })
        .collect())
}

/// `P`'s fields against the shader's block, read by [`wgsl_params`].
pub fn check_fields<P: Uniform>(kernel: &str, shader: &[(String, String)]) -> Result<()> {
    let same = P::FIELDS.len() == shader.len()
        && P::FIELDS
            .iter()
            .zip(shader)
            .all(|((n, t), (sn, st))| n == sn && t == st);
    if same {
        return Ok(());
    }
    let show = |f: &mut dyn Iterator<Item = (&str, &str)>| {
        f.map(|(n, t)| format!("{n}: {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Error::Gpu(format!(
        "{kernel}: the host's uniform block {{ {} }} is not shaders/{kernel}.wgsl's Params {{ {} }}",
        show(&mut P::FIELDS.iter().copied()),
        show(&mut shader.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    )))
}

/// The block as the u32 words the uniform buffer holds.
pub fn words<P: Uniform>(p: &P) -> &[u32] {
    bytemuck::cast_slice(std::slice::from_ref(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    uniform! {
        struct Example { n: u32, eps: f32 }
    }

    #[test]
    fn fields_are_read_from_the_shader_and_compared_in_order() {
        let src = "struct Params { n: u32, eps: f32 }\n\
                   @group(0) @binding(0) var<uniform> p: Params;\n\
                   @group(0) @binding(1) var<storage, read_write> out: array<f32>;\n\
                   @compute @workgroup_size(64) fn main() { out[0] = p.eps * f32(p.n); }";
        let fields = wgsl_params("example", src).unwrap();
        assert_eq!(
            fields,
            [("n".into(), "u32".into()), ("eps".into(), "f32".into())]
        );
        check_fields::<Example>("example", &fields).unwrap();
        let swapped = vec![fields[1].clone(), fields[0].clone()];
        let e = check_fields::<Example>("example", &swapped).unwrap_err();
        assert!(e.to_string().contains("{ n: u32, eps: f32 }"), "{e}");
        let retyped = vec![fields[0].clone(), ("eps".into(), "u32".into())];
        assert!(check_fields::<Example>("example", &retyped).is_err());
        assert!(check_fields::<Example>("example", &fields[..1]).is_err());
        let p = Example { n: 3, eps: 0.5 };
        assert_eq!(words(&p), [3, 0.5f32.to_bits()]);
    }
}
