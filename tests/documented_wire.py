"""The wire columns as docs/wire.md writes them (sections 2, 3.2 and 6.3), typed out once.

Both ``spxdl/datasets/`` (the client's side) and ``spxdl/simulator/columns.py`` (the other side
of the wire) keep their own lists; tests compare each against this transcription of the document,
so that when the two sides disagree a test fails instead of both being wrong together.
"""

# §2 format arrays (v2); bulk CSV prepends the contract columns (§3.2)
V2_CONTRACT = "root,expiration,strike,right"
V2_FORMATS = {
    "greeks": "ms_of_day,bid,ask,delta,theta,vega,rho,epsilon,lambda,implied_vol,iv_error,ms_of_day2,underlying_price,date",
    "greeks_second_order": "ms_of_day,bid,ask,gamma,vanna,charm,vomma,veta,implied_vol,iv_error,ms_of_day2,underlying_price,date",
    "quote": "ms_of_day,bid_size,bid_exchange,bid,bid_condition,ask_size,ask_exchange,ask,ask_condition,date",
    "ohlc": "ms_of_day,open,high,low,close,volume,count,date",
    "open_interest": "ms_of_day,open_interest,date",
    "eod": "ms_of_day,ms_of_day2,open,high,low,close,volume,count,bid_size,bid_exchange,bid,bid_condition,"
    "ask_size,ask_exchange,ask,ask_condition,date",
}
V2_BULK_HEADERS = {name: f"{V2_CONTRACT},{fields}" for name, fields in V2_FORMATS.items()}
# §1.4 non-bulk v2 history: no contract columns
V2_HEADERS = {"index_price": "ms_of_day,price,date"}

# §6.3 CSV headers (v3); second order from §6.2 (the vendor's OpenAPI columns)
V3_HEADERS = {
    "greeks_second_order": "symbol,expiration,strike,right,timestamp,bid,ask,gamma,vanna,charm,vomma,veta,"
    "implied_vol,iv_error,underlying_timestamp,underlying_price",
    "greeks": "symbol,expiration,strike,right,timestamp,bid,ask,delta,theta,vega,rho,epsilon,lambda,implied_vol,"
    "iv_error,underlying_timestamp,underlying_price",
    "quote": "symbol,expiration,strike,right,timestamp,bid_size,bid_exchange,bid,bid_condition,ask_size,"
    "ask_exchange,ask,ask_condition",
    "ohlc": "symbol,expiration,strike,right,timestamp,open,high,low,close,volume,count,vwap",
    "open_interest": "symbol,expiration,strike,right,timestamp,open_interest",
    "eod": "symbol,expiration,strike,right,created,last_trade,open,high,low,close,volume,count,bid_size,"
    "bid_exchange,bid,bid_condition,ask_size,ask_exchange,ask,ask_condition",
    "greeks_eod": "symbol,expiration,strike,right,timestamp,open,high,low,close,volume,count,bid_size,bid_exchange,"
    "bid,bid_condition,ask_size,ask_exchange,ask,ask_condition,delta,theta,vega,rho,epsilon,lambda,gamma,vanna,"
    "charm,vomma,veta,vera,speed,zomma,color,ultima,d1,d2,dual_delta,dual_gamma,implied_vol,iv_error,"
    "underlying_timestamp,underlying_price",
    "index_price": "timestamp,price",
}
