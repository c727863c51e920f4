//! Containers by reference: a list, a dict, a sequence and an iterator, through their dunders
//! (RPyC's CALLATTR) and iteration in chunks (RPyC's BUFFITER).

use futures::TryStreamExt;
use netref::{kinds, prelude::*, Slice};

use crate::Checks;

pub(crate) async fn run(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    list(root, c).await?;
    dict(root, c).await?;
    seq(root, c).await?;
    count_to(root, c).await
}

/// `slice(start, stop)`.
fn slice(start: i64, stop: i64) -> Slice {
    Slice { start: Some(start), stop: Some(stop), step: None }
}

async fn list(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    let list: NetRef = root.call_method("get_list", ()).await?;
    c.check_seen("get_list() is a builtins.list by reference", list.type_name() == "builtins.list", list.id_pack());
    let len: i64 = list.call_method("__len__", ()).await?;
    let second: i64 = list.call_method("__getitem__", (1,)).await?;
    let last: i64 = list.call_method("__getitem__", (-1,)).await?;
    c.check_seen("list: len 3, [1] == 20, [-1] == 30", (len, second, last) == (3, 20, 30), (len, second, last));
    c.check_raises("list[5] raises IndexError", list.call_method::<i64>("__getitem__", (5,)).await, kinds::INDEX_ERROR);
    let has_20: bool = list.call_method("__contains__", (20,)).await?;
    let has_99: bool = list.call_method("__contains__", (99,)).await?;
    c.check_seen("list: 20 in it, 99 not", has_20 && !has_99, (has_20, has_99));
    // A slice of a list is a new list, by reference too.
    let part: NetRef = list.call_method("__getitem__", (slice(0, 2),)).await?;
    let part_len: i64 = part.call_method("__len__", ()).await?;
    c.check_seen(
        "list[0:2] is a list of 2, by reference",
        part.type_name() == "builtins.list" && part_len == 2,
        part_len,
    );
    drop(part);

    // Iteration by hand: `__iter__`, then `__next__` until StopIteration.
    let it: NetRef = list.call_method("__iter__", ()).await?;
    let mut items = Vec::new();
    let end = loop {
        match it.call_method::<i64>("__next__", ()).await {
            Ok(item) if items.len() < 10 => items.push(item),
            other => break other,
        }
    };
    let stopped = matches!(&end, Err(e) if e.as_remote().is_some_and(|r| r.is_stop_iteration()));
    c.check_seen(
        "list: __iter__ + __next__ give 10, 20, 30, then StopIteration",
        stopped && items == [10, 20, 30],
        (&items, end),
    );
    drop(it);
    // Iteration in chunks (BUFFITER): a stock server answers `()` at the end.
    let all: Vec<i64> = list.iter::<i64>().try_collect().await?;
    c.check_seen("list: iter() reads 10, 20, 30 in chunks", all == [10, 20, 30], &all);
    Ok(())
}

async fn dict(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    let dict: NetRef = root.call_method("get_dict", ()).await?;
    c.check_seen("get_dict() is a builtins.dict by reference", dict.type_name() == "builtins.dict", dict.id_pack());
    let a: i64 = dict.call_method("__getitem__", ("a",)).await?;
    let len: i64 = dict.call_method("__len__", ()).await?;
    let has_b: bool = dict.call_method("__contains__", ("b",)).await?;
    c.check_seen("dict: ['a'] == 1, len 2, 'b' in it", a == 1 && len == 2 && has_b, (a, len, has_b));
    let missing = dict.call_method::<i64>("__getitem__", ("zz",)).await;
    let key_error =
        matches!(&missing, Err(e) if e.as_remote().is_some_and(|r| r.is(kinds::KEY_ERROR) && r.message == "'zz'"));
    c.check_seen("dict['zz'] raises KeyError('zz')", key_error, missing);
    let mut keys: Vec<String> = dict.iter::<String>().try_collect().await?;
    keys.sort();
    c.check_seen("dict: iterating gives its keys", keys == ["a", "b"], &keys);
    Ok(())
}

async fn seq(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    let seq: NetRef = root.call_method("get_seq", (5,)).await?;
    c.check_seen("get_seq(5) is an interop.Seq", seq.type_name() == "interop.Seq", seq.id_pack());
    let len: i64 = seq.call_method("__len__", ()).await?;
    let third: i64 = seq.call_method("__getitem__", (2,)).await?;
    let last: i64 = seq.call_method("__getitem__", (-1,)).await?;
    c.check_seen("seq: len 5, [2] == 20, [-1] == 40", (len, third, last) == (5, 20, 40), (len, third, last));
    // A slice of the sequence is a tuple, by value.
    let part: Value = seq.call_method("__getitem__", (slice(1, 3),)).await?;
    c.check_seen(
        "seq[1:3] is the tuple (10, 20), by value",
        part == Value::Tuple(vec![Value::Int(10), Value::Int(20)]),
        &part,
    );
    c.check_raises("seq[9] raises IndexError", seq.call_method::<i64>("__getitem__", (9,)).await, kinds::INDEX_ERROR);
    let has_30: bool = seq.call_method("__contains__", (30,)).await?;
    c.check("seq: 30 in it", has_30);
    let all: Vec<i64> = seq.iter::<i64>().try_collect().await?;
    c.check_seen("seq: iter() reads 0, 10, 20, 30, 40", all == [0, 10, 20, 30, 40], &all);
    Ok(())
}

async fn count_to(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    let counter: NetRef = root.call_method("count_to", (6,)).await?;
    c.check_seen("count_to(6) is an interop.Counter", counter.type_name() == "interop.Counter", counter.id_pack());
    let same: NetRef = counter.call_method("__iter__", ()).await?;
    c.check("count_to: __iter__ returns the same reference", same == counter);
    drop(same);
    let first: i64 = counter.call_method("__next__", ()).await?;
    let chunk: Vec<i64> = counter.next_chunk(2).await?;
    c.check_seen(
        "count_to: __next__ gives 0, a chunk of 2 gives [1, 2]",
        first == 0 && chunk == [1, 2],
        (first, &chunk),
    );
    let rest: Vec<i64> = counter.iter::<i64>().try_collect().await?;
    c.check_seen("count_to: iter() reads the rest, [3, 4, 5]", rest == [3, 4, 5], &rest);
    let empty: Vec<i64> = counter.next_chunk(4).await?;
    c.check_seen("count_to: an exhausted iterator's chunk is empty", empty.is_empty(), &empty);
    let end = counter.call_method::<i64>("__next__", ()).await;
    let stopped = matches!(&end, Err(e) if e.as_remote().is_some_and(|r| r.is_stop_iteration()));
    c.check_seen("count_to: __next__ at the end raises StopIteration", stopped, end);
    Ok(())
}
