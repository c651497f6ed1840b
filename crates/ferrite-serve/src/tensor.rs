//! Open Inference Protocol v2 tensors: the JSON request and response bodies (row-major `data`,
//! flat or nested), and Triton's binary-data extension, where the body is a JSON header of
//! `Inference-Header-Content-Length` bytes followed by raw tensors in order (little-endian; a
//! BYTES element is a 4-byte length and its bytes). `tritonclient` sends and asks for binary
//! data by default.
//!
//! Every check names the input and what was expected and got; nothing here can panic or
//! allocate more than the body's own size (element counts are checked against the bytes present
//! before any buffer is made).
//!
//! Layer: serving.

use crate::error::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The datatypes ferrite serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Bool,
    Int32,
    Int64,
    Fp32,
    Fp64,
    Bytes,
}

impl DataType {
    pub fn parse(s: &str) -> Option<DataType> {
        Some(match s {
            "BOOL" => DataType::Bool,
            "INT32" => DataType::Int32,
            "INT64" => DataType::Int64,
            "FP32" => DataType::Fp32,
            "FP64" => DataType::Fp64,
            "BYTES" => DataType::Bytes,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// Bytes per element in binary form (BYTES elements vary).
    fn width(self) -> Option<usize> {
        match self {
            DataType::Bool => Some(1),
            DataType::Int32 | DataType::Fp32 => Some(4),
            DataType::Int64 | DataType::Fp64 => Some(8),
            DataType::Bytes => None,
        }
    }
}

/// A tensor's elements.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

impl Data {
    pub fn datatype(&self) -> DataType {
        match self {
            Data::Bool(_) => DataType::Bool,
            Data::Int32(_) => DataType::Int32,
            Data::Int64(_) => DataType::Int64,
            Data::Fp32(_) => DataType::Fp32,
            Data::Fp64(_) => DataType::Fp64,
            Data::Bytes(_) => DataType::Bytes,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Data::Bool(v) => v.len(),
            Data::Int32(v) => v.len(),
            Data::Int64(v) => v.len(),
            Data::Fp32(v) => v.len(),
            Data::Fp64(v) => v.len(),
            Data::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn to_json(&self) -> Value {
        match self {
            Data::Bool(v) => json!(v),
            Data::Int32(v) => json!(v),
            Data::Int64(v) => json!(v),
            // JSON has no NaN or infinity: those become null (a client sees the hole).
            Data::Fp32(v) => json!(v),
            Data::Fp64(v) => json!(v),
            Data::Bytes(v) => Value::Array(
                v.iter()
                    .map(|b| Value::String(String::from_utf8_lossy(b).into_owned()))
                    .collect(),
            ),
        }
    }

    fn to_binary(&self) -> Vec<u8> {
        match self {
            Data::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
            Data::Int32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Int64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Fp32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Fp64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bytes(v) => v
                .iter()
                .flat_map(|b| (b.len() as u32).to_le_bytes().into_iter().chain(b.iter().copied()))
                .collect(),
        }
    }
}

/// A named tensor of a request or response.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Data,
}

/// An input or output a model declares: `-1` marks a variable dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: &'static str,
    pub datatype: DataType,
    pub shape: Vec<i64>,
    /// An input a request may leave out (Triton's `optional`).
    pub optional: bool,
}

impl TensorSpec {
    pub fn new(name: &'static str, datatype: DataType, shape: &[i64]) -> Self {
        TensorSpec {
            name,
            datatype,
            shape: shape.to_vec(),
            optional: false,
        }
    }

    /// An input a request may leave out.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({"name": self.name, "datatype": self.datatype.name(), "shape": self.shape});
        if self.optional {
            v["optional"] = json!(true);
        }
        v
    }

    /// Checks a request tensor against this spec.
    ///
    /// # Errors
    /// 400 naming the input, the expected and the received datatype or shape.
    pub fn check(&self, t: &NamedTensor) -> ApiResult<()> {
        let got = t.data.datatype();
        if got != self.datatype {
            return Err(ApiError::bad(format!(
                "input '{}': expected datatype {}, got {}",
                self.name,
                self.datatype.name(),
                got.name()
            )));
        }
        let fits =
            t.shape.len() == self.shape.len() && t.shape.iter().zip(&self.shape).all(|(&g, &w)| w < 0 || g as i64 == w);
        if !fits {
            return Err(ApiError::bad(format!(
                "input '{}': expected shape {:?}, got {:?}",
                self.name, self.shape, t.shape
            )));
        }
        Ok(())
    }
}

/// A parsed inference request.
#[derive(Debug)]
pub struct InferRequest {
    pub id: Option<String>,
    pub inputs: Vec<NamedTensor>,
    /// The outputs asked for (all when absent), each with whether it wants binary data.
    pub outputs: Option<Vec<(String, bool)>>,
    /// `parameters.binary_data_output`: binary for every output not asked for by name.
    pub binary_output: bool,
}

impl InferRequest {
    /// The input named `name`.
    ///
    /// # Errors
    /// 400 when it is missing, naming it.
    pub fn input(&self, name: &str) -> ApiResult<&NamedTensor> {
        self.inputs
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ApiError::bad(format!("input '{name}' is missing")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<InputJson>,
    #[serde(default)]
    outputs: Option<Vec<OutputJson>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputJson {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

fn flag(params: &Option<Map<String, Value>>, key: &str) -> bool {
    params
        .as_ref()
        .and_then(|p| p.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Parses a request body; `header_len` is `Inference-Header-Content-Length` when present.
///
/// # Errors
/// 400 naming what is wrong: the header length past the body, malformed JSON, an unknown
/// datatype, a shape and a number of elements that disagree, binary sizes that lie.
pub fn parse_request(body: &[u8], header_len: Option<usize>) -> ApiResult<InferRequest> {
    let (head, mut binary) = match header_len {
        Some(n) if n > body.len() => {
            return Err(ApiError::bad(format!(
                "Inference-Header-Content-Length is {n}, but the body has only {} bytes",
                body.len()
            )));
        }
        Some(n) => body.split_at(n),
        None => (body, &[][..]),
    };
    let req: RequestJson =
        serde_json::from_slice(head).map_err(|e| ApiError::bad(format!("malformed inference request JSON: {e}")))?;
    let id = match req.id {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => return Err(ApiError::bad(format!("'id' must be a string, got {other}"))),
    };
    let mut inputs = Vec::with_capacity(req.inputs.len());
    for input in req.inputs {
        if inputs.iter().any(|t: &NamedTensor| t.name == input.name) {
            return Err(ApiError::bad(format!("input '{}' is given twice", input.name)));
        }
        inputs.push(parse_input(input, &mut binary)?);
    }
    if !binary.is_empty() {
        return Err(ApiError::bad(format!(
            "{} bytes of binary data follow the header but no input claims them",
            binary.len()
        )));
    }
    let outputs = req.outputs.map(|outs| {
        outs.into_iter()
            .map(|o| (o.name, flag(&o.parameters, "binary_data")))
            .collect()
    });
    Ok(InferRequest {
        id,
        inputs,
        outputs,
        binary_output: flag(&req.parameters, "binary_data_output"),
    })
}

fn parse_input(input: InputJson, binary: &mut &[u8]) -> ApiResult<NamedTensor> {
    let name = input.name;
    let datatype = DataType::parse(&input.datatype).ok_or_else(|| {
        ApiError::bad(format!(
            "input '{name}': datatype '{}' is not one of BOOL, INT32, INT64, FP32, FP64, BYTES",
            input.datatype
        ))
    })?;
    let mut count: usize = 1;
    let mut shape = Vec::with_capacity(input.shape.len());
    for &d in &input.shape {
        let d = usize::try_from(d).map_err(|_| {
            ApiError::bad(format!(
                "input '{name}': shape {:?} has a negative dimension",
                input.shape
            ))
        })?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| ApiError::bad(format!("input '{name}': shape {:?} is too large", input.shape)))?;
        shape.push(d);
    }
    let binary_size = match input.parameters.as_ref().and_then(|p| p.get("binary_data_size")) {
        None => None,
        Some(v) => Some(v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
            ApiError::bad(format!(
                "input '{name}': binary_data_size must be a byte count, got {v}"
            ))
        })?),
    };
    let data = match (binary_size, input.data) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(format!(
                "input '{name}' has both 'data' and binary_data_size"
            )));
        }
        (Some(size), None) => {
            if size > binary.len() {
                return Err(ApiError::bad(format!(
                    "input '{name}': binary_data_size {size} but only {} bytes of binary data remain",
                    binary.len()
                )));
            }
            let (mine, rest) = binary.split_at(size);
            *binary = rest;
            from_binary(&name, datatype, count, mine)?
        }
        (None, Some(value)) => from_json(&name, datatype, count, value)?,
        (None, None) => return Err(ApiError::bad(format!("input '{name}' has no 'data'"))),
    };
    Ok(NamedTensor { name, shape, data })
}

fn from_binary(name: &str, datatype: DataType, count: usize, b: &[u8]) -> ApiResult<Data> {
    if let Some(w) = datatype.width()
        && count.checked_mul(w) != Some(b.len())
    {
        return Err(ApiError::bad(format!(
            "input '{name}': {count} {} elements need {} bytes, binary_data_size is {}",
            datatype.name(),
            count.saturating_mul(w),
            b.len()
        )));
    }
    let words = |w: usize| b.chunks_exact(w);
    Ok(match datatype {
        DataType::Bool => Data::Bool(b.iter().map(|&x| x != 0).collect()),
        DataType::Int32 => Data::Int32(words(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        DataType::Fp32 => Data::Fp32(words(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        DataType::Int64 => Data::Int64(
            words(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        DataType::Fp64 => Data::Fp64(
            words(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        DataType::Bytes => {
            let mut out = Vec::new();
            let mut rest = b;
            while !rest.is_empty() {
                if rest.len() < 4 {
                    return Err(ApiError::bad(format!(
                        "input '{name}': a BYTES element is cut off in its length"
                    )));
                }
                let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if n > rest.len() - 4 {
                    return Err(ApiError::bad(format!(
                        "input '{name}': a BYTES element claims {n} bytes, {} remain",
                        rest.len() - 4
                    )));
                }
                out.push(rest[4..4 + n].to_vec());
                rest = &rest[4 + n..];
            }
            if out.len() != count {
                return Err(ApiError::bad(format!(
                    "input '{name}': the shape holds {count} elements, the binary data {}",
                    out.len()
                )));
            }
            Data::Bytes(out)
        }
    })
}

/// Row-major elements of flat or nested JSON arrays (a scalar is one element).
fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>, limit: usize) -> bool {
    match v {
        Value::Array(items) => items.iter().all(|i| flatten(i, out, limit)),
        other => {
            out.push(other);
            out.len() <= limit
        }
    }
}

fn from_json(name: &str, datatype: DataType, count: usize, value: Value) -> ApiResult<Data> {
    let mut items = Vec::new();
    // The body bounds the elements, so a shape claiming more than it holds stops here early.
    let within = flatten(&value, &mut items, count);
    if !within || items.len() != count {
        return Err(ApiError::bad(format!(
            "input '{name}': the shape holds {count} elements, 'data' has {}",
            if within { items.len().to_string() } else { "more".into() }
        )));
    }
    let bad = |i: usize, v: &Value| {
        ApiError::bad(format!(
            "input '{name}': element {i} is {v}, not a {} value",
            datatype.name()
        ))
    };
    let int = |i: usize, v: &Value| v.as_i64().ok_or_else(|| bad(i, v));
    let float = |i: usize, v: &Value| v.as_f64().ok_or_else(|| bad(i, v));
    let e = items.into_iter().enumerate();
    Ok(match datatype {
        DataType::Bool => Data::Bool(
            e.map(|(i, v)| v.as_bool().ok_or_else(|| bad(i, v)))
                .collect::<ApiResult<_>>()?,
        ),
        DataType::Int32 => Data::Int32(
            e.map(|(i, v)| int(i, v).and_then(|x| i32::try_from(x).map_err(|_| bad(i, v))))
                .collect::<ApiResult<_>>()?,
        ),
        DataType::Int64 => Data::Int64(e.map(|(i, v)| int(i, v)).collect::<ApiResult<_>>()?),
        DataType::Fp32 => Data::Fp32(
            e.map(|(i, v)| float(i, v).map(|x| x as f32))
                .collect::<ApiResult<_>>()?,
        ),
        DataType::Fp64 => Data::Fp64(e.map(|(i, v)| float(i, v)).collect::<ApiResult<_>>()?),
        DataType::Bytes => Data::Bytes(
            e.map(|(i, v)| v.as_str().map(|s| s.as_bytes().to_vec()).ok_or_else(|| bad(i, v)))
                .collect::<ApiResult<_>>()?,
        ),
    })
}

/// An encoded response: the body and, when some output is binary, the JSON header's length.
pub struct EncodedResponse {
    pub body: Vec<u8>,
    pub header_len: Option<usize>,
}

/// Encodes a response, each output as JSON `data` or binary as the request asked.
///
/// # Errors
/// 400 when the request asked for an output the model does not produce.
pub fn encode_response(
    model: &str,
    version: &str,
    req: &InferRequest,
    outputs: Vec<NamedTensor>,
) -> ApiResult<EncodedResponse> {
    let wanted: Vec<(NamedTensor, bool)> = match &req.outputs {
        None => outputs.into_iter().map(|t| (t, req.binary_output)).collect(),
        Some(asked) => {
            let mut all = outputs;
            let mut chosen = Vec::with_capacity(asked.len());
            for (name, binary) in asked {
                let at = all
                    .iter()
                    .position(|t| &t.name == name)
                    .ok_or_else(|| ApiError::bad(format!("output '{name}' is not an output of model '{model}'")))?;
                chosen.push((all.swap_remove(at), *binary || req.binary_output));
            }
            chosen
        }
    };
    let mut tail = Vec::new();
    let outs: Vec<Value> = wanted
        .iter()
        .map(|(t, binary)| {
            let mut o = json!({"name": t.name, "datatype": t.data.datatype().name(), "shape": t.shape});
            if *binary {
                let bytes = t.data.to_binary();
                o["parameters"] = json!({"binary_data_size": bytes.len()});
                tail.extend(bytes);
            } else {
                o["data"] = t.data.to_json();
            }
            o
        })
        .collect();
    let mut head = json!({"model_name": model, "model_version": version, "outputs": outs});
    if let Some(id) = &req.id {
        head["id"] = json!(id);
    }
    let mut body = serde_json::to_vec(&head).map_err(|e| ApiError::internal(e.to_string()))?;
    let binary = wanted.iter().any(|(_, b)| *b);
    let header_len = binary.then_some(body.len());
    body.extend(tail);
    Ok(EncodedResponse { body, header_len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_tensors_flat_or_nested_with_the_id() {
        let body = br#"{"id":"r1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4.5]]},
            {"name":"t","shape":[1],"datatype":"BYTES","data":["hi"]}]}"#;
        let r = parse_request(body, None).unwrap();
        assert_eq!(r.id.as_deref(), Some("r1"));
        assert_eq!(r.inputs[0].data, Data::Fp32(vec![1.0, 2.0, 3.0, 4.5]));
        assert_eq!(r.inputs[0].shape, vec![2, 2]);
        assert_eq!(r.inputs[1].data, Data::Bytes(vec![b"hi".to_vec()]));
    }

    #[test]
    fn binary_inputs_and_outputs_round_trip() {
        let head = br#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},
            {"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":11}}],
            "outputs":[{"name":"y","parameters":{"binary_data":true}}]}"#;
        let mut body = head.to_vec();
        body.extend(1.5f32.to_le_bytes());
        body.extend((-2f32).to_le_bytes());
        body.extend(2u32.to_le_bytes());
        body.extend(b"ab");
        body.extend(1u32.to_le_bytes());
        body.extend(b"c");
        let r = parse_request(&body, Some(head.len())).unwrap();
        assert_eq!(r.inputs[0].data, Data::Fp32(vec![1.5, -2.0]));
        assert_eq!(r.inputs[1].data, Data::Bytes(vec![b"ab".to_vec(), b"c".to_vec()]));
        let y = NamedTensor {
            name: "y".into(),
            shape: vec![1],
            data: Data::Int64(vec![7]),
        };
        let enc = encode_response("m", "1", &r, vec![y]).unwrap();
        let n = enc.header_len.unwrap();
        let head: Value = serde_json::from_slice(&enc.body[..n]).unwrap();
        assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(&enc.body[n..], &7i64.to_le_bytes());
    }

    #[test]
    fn lies_and_mismatches_are_named_errors() {
        let cases: [(&[u8], Option<usize>, &str); 8] = [
            (b"{", None, "malformed"),
            (br#"{"inputs":[]}"#, Some(99), "Inference-Header-Content-Length is 99"),
            (
                br#"{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2]}]}"#,
                None,
                "holds 3 elements, 'data' has 2",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":[1]}]}"#,
                None,
                "datatype 'FP16'",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}"#,
                None,
                "negative",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":["a"]}]}"#,
                None,
                "not a INT32",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}"#,
                Some(usize::MAX),
                "only 0 bytes",
            ),
            (
                br#"{"inputs":[{"name":"x","shape":[99999999999,99999999999],"datatype":"FP32","data":[1]}]}"#,
                None,
                "too large",
            ),
        ];
        for (body, len, want) in cases {
            // usize::MAX: the whole body is the header.
            let len = len.map(|n| if n == usize::MAX { body.len() } else { n });
            let e = parse_request(body, len).unwrap_err();
            assert!(
                e.message.contains(want),
                "{}: {}",
                String::from_utf8_lossy(body),
                e.message
            );
            assert_eq!(e.status, 400);
        }
    }
}
