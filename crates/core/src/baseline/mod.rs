//! Non-deep baselines: ET-FL (Marée, Geurts & Wehenkel 2016).

pub mod et_fl;
