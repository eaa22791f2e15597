//! A restricted unpickler for PyTorch weight files.
//!
//! `torch.load` runs whatever a pickle asks for; this reader rebuilds only the handful of objects a
//! state dict is made of (dicts, lists, tuples, numbers, strings and tensors over storages) and
//! refuses every other global with an error, so a weight file can never run code.

mod objects;
pub use objects::*;
use objects::{allowed_global, persistent_storage, reduce};

use crate::error::{Error, Result};
use std::collections::HashMap;

/// Reads one pickle from `data`, starting at `*pos`, and leaves `*pos` after its STOP opcode.
pub fn load(data: &[u8], pos: &mut usize) -> Result<Value> {
    Unpickler {
        data,
        pos: *pos,
        stack: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
    .map(|(v, end)| {
        *pos = end;
        v
    })
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Invalid(format!("pickle: {}", msg.into()))
}

impl<'a> Unpickler<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        let end = end.ok_or_else(|| bad(format!("truncated at byte {}", self.pos)))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| bad("unterminated GLOBAL"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
    fn string(&mut self, n: usize) -> Result<Value> {
        let b = self.take(n)?;
        Ok(Value::Str(
            String::from_utf8(b.to_vec()).map_err(|_| bad("invalid UTF-8 string"))?,
        ))
    }
    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| bad("stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or_else(|| bad("no MARK"))?;
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        Ok(items)
    }
    fn top(&mut self) -> Result<&mut Value> {
        self.stack.last_mut().ok_or_else(|| bad("stack underflow"))
    }
    fn memo_get(&self, i: u32) -> Result<Value> {
        self.memo
            .get(&i)
            .cloned()
            .ok_or_else(|| bad(format!("memo {i} missing")))
    }
    fn global(&mut self, module: String, name: String) -> Result<()> {
        let full = format!("{module}.{name}");
        if !allowed_global(&full) {
            return Err(bad(format!(
                "refused global {full}: patholab rebuilds only tensors and dicts and never runs code from a weight file"
            )));
        }
        self.stack.push(Value::Global(full));
        Ok(())
    }

    fn run(mut self) -> Result<(Value, usize)> {
        loop {
            if self.stack.len() > 1_000_000 {
                return Err(bad("stack too deep"));
            }
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?;
                }
                0x95 => {
                    self.u64()?;
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok((v, self.pos));
                }
                b'(' => self.stack.push(Value::Mark),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(bad("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.take(4)?.try_into().unwrap());
                    self.stack.push(Value::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take(2)?.try_into().unwrap());
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        self.u32()? as usize
                    };
                    let b = self.take(n)?;
                    let mut v: i128 = 0;
                    for (i, byte) in b.iter().enumerate().take(16) {
                        v |= (*byte as i128) << (8 * i);
                    }
                    if n > 0 && n < 16 && b[n - 1] & 0x80 != 0 {
                        v -= 1i128 << (8 * n);
                    }
                    self.stack.push(Value::Int(v as i64));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                    self.stack.push(Value::Float(v));
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                0x8d => {
                    let n = self.u64()? as usize;
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                b'T' | b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'r' => {
                    let i = self.u32()?;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(i, v);
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    let v = self.memo_get(i)?;
                    self.stack.push(v);
                }
                b'j' => {
                    let i = self.u32()?;
                    let v = self.memo_get(i)?;
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.global(m, n)?,
                        _ => return Err(bad("STACK_GLOBAL needs two strings")),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = persistent_storage(pid)?;
                    self.stack.push(v);
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = reduce(func, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    // NEWOBJ: only the bare TorchScript module of `.ot` files, rebuilt as a dict.
                    let _args = self.pop()?;
                    match self.pop()? {
                        Value::Global(g) if g == "__torch__.Module" => {
                            self.stack.push(Value::Dict(Vec::new()))
                        }
                        _ => return Err(bad("NEWOBJ of a class that is not allowed")),
                    }
                }
                b'b' => {
                    // State for an object just built: an OrderedDict's `_metadata` (ignored) or a
                    // module's attributes (kept as dict entries).
                    let state = self.pop()?;
                    match (self.top()?, state) {
                        (Value::Dict(d), Value::Dict(s))
                            if d.is_empty()
                                && s.iter().any(|(_, v)| matches!(v, Value::Tensor(_))) =>
                        {
                            *d = s
                        }
                        (Value::Dict(_) | Value::Tensor(_), _) => {}
                        _ => return Err(bad("BUILD on an object that is not a dict")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        Value::Dict(d) => d.push((k, v)),
                        _ => return Err(bad("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(bad("SETITEMS with an odd number of items"));
                    }
                    let mut it = items.into_iter();
                    let Value::Dict(d) = self.top()? else {
                        return Err(bad("SETITEMS on a non-dict"));
                    };
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.push(v),
                        _ => return Err(bad("APPEND on a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        _ => return Err(bad("APPENDS on a non-list")),
                    }
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                other => {
                    return Err(bad(format!(
                        "opcode 0x{other:02x} at byte {} is not allowed in a weight file",
                        self.pos - 1
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(module: &str, name: &str) -> Vec<u8> {
        format!("c{module}\n{name}\n").into_bytes()
    }

    #[test]
    fn refuses_os_system() {
        let mut p = vec![0x80, 2];
        p.extend(global("os", "system"));
        p.extend(b"X\x02\x00\x00\x00ls\x85R.");
        let err = load(&p, &mut 0).unwrap_err().to_string();
        assert!(err.contains("refused global os.system"), "{err}");
    }

    #[test]
    fn refuses_builtins_eval_via_stack_global() {
        let mut p = vec![0x80, 4];
        p.extend(b"\x8c\x08builtins\x8c\x04eval\x93");
        p.extend(b"\x8c\x041+1\x85R.");
        let err = load(&p, &mut 0).unwrap_err().to_string();
        assert!(err.contains("builtins.eval"), "{err}");
    }

    #[test]
    fn reads_a_dict_of_numbers() {
        // pickle.dumps({'a': 1, 'b': [2.5, 'x']}, protocol=2)
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(G@\x04\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xq\x04eu.";
        let v = load(p, &mut 0).unwrap();
        let Value::Dict(d) = v else { panic!() };
        assert_eq!(d.len(), 2);
        assert!(matches!(d[0].1, Value::Int(1)));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let p = b"\x80\x02}q\x00(X\x01\x00\x00";
        for n in 0..p.len() {
            assert!(load(&p[..n], &mut 0).is_err());
        }
    }
}
